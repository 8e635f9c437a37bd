"""Composition root of the scheduling service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.messaging.journal import journal_router
from carecoord_shared.service import ServiceDefinition

from . import api, handlers
from .models import audit, journal, messaging, metadata, patients

definition = ServiceDefinition(
    name="scheduling",
    title="carecoord scheduling",
    metadata=metadata,
    tables=messaging,
    audit=audit,
    jurisdiction_of=jurisdiction_lookup(patients),
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(api.router, journal_router(journal)),
    register_handlers=handlers.register,
)
