from carecoord_shared.service import serve

from .app import build
from .settings import DosingSettings


def main() -> None:
    serve(build, DosingSettings)


if __name__ == "__main__":
    main()
