"""A decision's precondition on the version of what it decides on: its ETag, compared with the locked row.

The use cases check it (``Precondition.check``) in the decision's own transaction, after locking the row, so
that a concurrent change either commits before the check (412) or waits for the decision. The HTTP side
(``carecoord_shared.http.preconditions``) reads it from ``If-Match`` and answers ETags.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PreconditionFailed


def etag(version: int) -> str:
    """A strong entity tag: a version is one exact state of the row."""
    return f'"{version}"'


@dataclass(frozen=True)
class Precondition:
    """The entity tags a request's ``If-Match`` lists; ``tags`` None when it sent none or ``*``."""

    tags: frozenset[str] | None = None

    def check(self, version: int, what: str) -> None:
        if self.tags is not None and etag(version) not in self.tags:
            raise PreconditionFailed(
                f"the {what} changed since it was read (If-Match names another version): read it again",
                etag(version),
            )
