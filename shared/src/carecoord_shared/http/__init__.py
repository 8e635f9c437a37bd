"""The HTTP layer: FastAPI pieces every service's API is built from.

``allow(...)`` (a route's roles, giving it the caller's ``Access``), the shared
dependencies (``UowDep``) and the journal's route. Below it are auth and
messaging; above it only the composition root (``carecoord_shared.service``).
"""

from .app import AccessChecks, CarecoordApp, current_app
from .auth import admitted_roles, allow
from .dependencies import PageDep, UowDep, get_uow, page_request
from .idempotency import IDEMPOTENT, IdempotencyRecorder, Replay, idempotency_table, is_idempotent
from .journal import JournalEntry, journal_router

__all__ = [
    "IDEMPOTENT",
    "AccessChecks",
    "CarecoordApp",
    "IdempotencyRecorder",
    "JournalEntry",
    "PageDep",
    "Replay",
    "UowDep",
    "admitted_roles",
    "allow",
    "current_app",
    "get_uow",
    "idempotency_table",
    "is_idempotent",
    "journal_router",
    "page_request",
]
