"""FastAPI dependencies the HTTP layer's routers share.

What a router needs from the service it runs in is reached through these
(from the typed :class:`~.app.CarecoordApp`), so that no router imports the composition root.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from ..messaging.unit_of_work import UnitOfWork
from ..pagination import DEFAULT_LIMIT, MAX_CURSOR_CHARS, MAX_LIMIT, PageRequest
from .app import current_app

# The dependencies are coroutines although nothing in them waits: FastAPI runs a plain ``def``
# dependency in a worker thread, a hop (and a GIL hand-over) per request for a few attribute reads.


async def get_uow(request: Request) -> UnitOfWork:
    uow = current_app(request).uow
    # A request with an Idempotency-Key claims it in its first transaction (http.idempotency),
    # which the route dependency looked up before this.
    pending = getattr(request.state, "idempotency", None)
    return uow if pending is None else uow.with_first_step(pending.claim)


UowDep = Annotated[UnitOfWork, Depends(get_uow)]


async def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_CHARS, description="the previous page's next_cursor; omit for the first page"),
    ] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


# Every list route takes this: ?limit= and ?cursor=, bounded (carecoord_shared.pagination).
PageDep = Annotated[PageRequest, Depends(page_request)]
