"""FastAPI dependencies the HTTP layer's routers share.

What a router needs from the service it runs in is reached through these
(from the typed :class:`~.app.CarecoordApp`), so that no router imports the composition root.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..messaging.unit_of_work import UnitOfWork
from .app import current_app


def get_uow(request: Request) -> UnitOfWork:
    uow = current_app(request).uow
    # A request with an Idempotency-Key claims it in its first transaction (http.idempotency),
    # which the route dependency looked up before this.
    pending = getattr(request.state, "idempotency", None)
    return uow if pending is None else uow.with_first_step(pending.claim)


UowDep = Annotated[UnitOfWork, Depends(get_uow)]
