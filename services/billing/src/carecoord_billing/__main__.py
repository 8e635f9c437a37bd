from carecoord_shared.service import serve

from .app import build
from .settings import BillingSettings


def main() -> None:
    serve(build, BillingSettings)


if __name__ == "__main__":
    main()
