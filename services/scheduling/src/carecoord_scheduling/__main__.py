from carecoord_shared.service import serve

from .app import definition


def main() -> None:
    serve(definition)


if __name__ == "__main__":
    main()
