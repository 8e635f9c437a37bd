from carecoord_shared.service import serve

from .app import build
from .settings import SafetySettings


def main() -> None:
    serve(build, SafetySettings)


if __name__ == "__main__":
    main()
