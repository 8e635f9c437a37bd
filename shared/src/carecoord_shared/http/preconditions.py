"""ETags and ``If-Match`` (RFC 9110 §8.8.3, §13.1.1): two clinicians deciding on the same plan or review cannot
overwrite each other, and nobody decides on a version they did not see.

A resource that has them carries a ``version`` column that a database trigger raises on every update
(``carecoord_shared.messaging.migrations.add_row_version_v1``; a trigger, so no write path can forget it). Its reads answer ``ETag: "<version>"``;
a decision on it may send ``If-Match`` with the ETag it read, and the use case compares it with the row it has
locked (:meth:`Precondition.check`), in the decision's own transaction: 412 ``precondition_failed`` with the
current ETag when someone changed it in between. Without ``If-Match`` a decision is made as before (the
domain's own rules still refuse a second resolution); ``If-Match: *`` asks only that the resource exist.

ETags are strong (a version is an exact state); a weak one (``W/"3"``) never matches, as RFC 9110 says for
``If-Match``. A header that is not a list of entity tags is an invalid request (422), naming the header.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Response
from fastapi.exceptions import RequestValidationError

from ..preconditions import Precondition, etag

# One entity tag: optional W/, then a quoted string of etagc characters (RFC 9110 §8.8.3).
_TAG = re.compile(r'\s*((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|$)')
MAX_IF_MATCH = 1024


def tagged(response: Response, resource: dict[str, object]) -> dict[str, object]:
    """``resource`` (a row with its ``version``), its ETag set on ``response``: what a decision sends back in If-Match."""
    response.headers["ETag"] = etag(int(resource["version"]))  # type: ignore[call-overload]
    return resource


def _invalid(message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("header", "If-Match"), "msg": message, "type": "value_error"}])


def parse_if_match(value: str | None) -> Precondition:
    if value is None or value.strip() == "*":
        return Precondition()
    if len(value) > MAX_IF_MATCH:
        raise _invalid(f"at most {MAX_IF_MATCH} characters")
    tags, position = set(), 0
    while position < len(value):
        match = _TAG.match(value, position)
        if match is None or match.end() == position:
            raise _invalid('must be "*" or entity tags, e.g. "3" (quoted), as the ETag header gave them')
        tags.add(match.group(1))
        position = match.end()
    if not tags:
        raise _invalid('must be "*" or entity tags, e.g. "3" (quoted), as the ETag header gave them')
    return Precondition(frozenset(tags))


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The ETag of the version read (e.g. "3"): the decision is refused with 412 if it changed since',
        ),
    ] = None,
) -> Precondition:
    return parse_if_match(if_match)


IfMatchDep = Annotated[Precondition, Depends(_if_match)]
