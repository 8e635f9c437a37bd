"""Composition root of the engagement service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.service import ServiceDefinition

from . import handlers, routes
from .models import audit, messaging, metadata, patients
from .settings import EngagementSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: EngagementSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="engagement",
        title="carecoord engagement: tasks and notifications",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        migrations_dir=MIGRATIONS,
        # No FHIR resource yet (a Task mapping would be the one); the CapabilityStatement every service has says so.
        routers=(routes.build_router(), fhir_router("engagement", ())),
        register_handlers=partial(handlers.register, settings=settings),
    )
