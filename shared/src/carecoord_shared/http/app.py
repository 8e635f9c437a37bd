"""A service's FastAPI app as the HTTP layer sees it: what its routes need, as typed attributes.

The composition root (``carecoord_shared.service``) makes a subclass carrying the whole
runtime; routers below it reach only what is here, so none imports the composition root,
and nothing is looked up on ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..auth.access import Auditor, JurisdictionLookup
from ..auth.care import RelationLookup
from ..auth.tokens import TokenVerifier
from ..messaging.unit_of_work import UnitOfWork
from .problems import document_problems


@dataclass(frozen=True)
class AccessChecks:
    """What ``allow`` needs from the service it runs in: how to verify a token and record access."""

    verifier: TokenVerifier
    auditor: Auditor
    sessions: async_sessionmaker[AsyncSession]
    jurisdiction_of: JurisdictionLookup | None
    relations: tuple[RelationLookup, ...] = ()


class CarecoordApp(FastAPI):
    def __init__(self, access_checks: AccessChecks, uow: UnitOfWork, idempotency: Table, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access_checks = access_checks
        self.uow = uow
        # Where an Idempotency-Key's first outcome is kept (http.idempotency).
        self.idempotency = idempotency

    def openapi(self) -> dict[str, Any]:
        # Every route's error answers documented as problem documents, here once rather than per route.
        if self.openapi_schema is None:
            self.openapi_schema = document_problems(super().openapi())
        return self.openapi_schema


def current_app(request: Request) -> CarecoordApp:
    app = request.app
    if not isinstance(app, CarecoordApp):
        raise TypeError(f"a carecoord route runs in a CarecoordApp, not {type(app).__name__}")
    return app
