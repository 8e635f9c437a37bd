from carecoord_shared.service import serve

from .app import build
from .settings import SchedulingSettings


def main() -> None:
    serve(build, SchedulingSettings)


if __name__ == "__main__":
    main()
