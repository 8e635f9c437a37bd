"""Failures an operator can act on: said plainly, with what to do, never a traceback."""

from __future__ import annotations


class OperatorError(Exception):
    """Something the operator must fix or choose; the message says what."""

    exit_code = 1


class StackUnavailable(OperatorError):
    exit_code = 2

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"{problem}\n"
            "Is the stack running? Start it with `make run` in another terminal (in the carecoord checkout) "
            'and wait for "carecoord is running."; or point this command at your stack with '
            "--kafka-bootstrap / CARECOORD_KAFKA_BOOTSTRAP and --service-url SERVICE=URL / CARECOORD_<SERVICE>_URL."
        )
