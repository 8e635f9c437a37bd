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
    return current_app(request).uow


UowDep = Annotated[UnitOfWork, Depends(get_uow)]
