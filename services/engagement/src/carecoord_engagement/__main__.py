from carecoord_shared.service import serve

from .app import build
from .settings import EngagementSettings


def main() -> None:
    serve(build, EngagementSettings)


if __name__ == "__main__":
    main()
