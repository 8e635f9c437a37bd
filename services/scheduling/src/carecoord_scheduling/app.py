"""Composition root of the scheduling service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.auth import care_relation_lookup, jurisdiction_lookup
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.http.journal import journal_router
from carecoord_shared.service import ServiceDefinition

from . import fhir, handlers, routes
from .models import audit, care_relations, journal, messaging, metadata, patients
from .settings import SchedulingSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: SchedulingSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="scheduling",
        title="carecoord scheduling",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        relations=(care_relation_lookup(care_relations),),
        migrations_dir=MIGRATIONS,
        routers=(routes.build_router(), journal_router(journal), fhir_router("scheduling", fhir.RESOURCES)),
        register_handlers=handlers.register,
    )
