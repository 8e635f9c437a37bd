"""FastAPI dependencies the HTTP layer's routers share.

The composition root (``carecoord_shared.service``) puts its runtime on
``app.state.runtime``; what a router needs from it is reached through these,
so that no router imports the composition root.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..messaging.unit_of_work import UnitOfWork


def get_uow(request: Request) -> UnitOfWork:
    uow: UnitOfWork = request.app.state.runtime.uow
    return uow


UowDep = Annotated[UnitOfWork, Depends(get_uow)]
