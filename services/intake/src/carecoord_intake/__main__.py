from carecoord_shared.service import serve

from .app import build
from .settings import IntakeSettings


def main() -> None:
    serve(build, IntakeSettings)


if __name__ == "__main__":
    main()
