"""Composition root of the dosing-review service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.auth import care_relation_lookup, jurisdiction_lookup
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.service import ServiceDefinition

from . import domain, fhir, handlers, outcomes, routes
from .models import audit, care_relations, jurisdictions, messaging, metadata
from .settings import DosingSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: DosingSettings) -> ServiceDefinition:
    titration = domain.load_titration()
    definitions = outcomes.load_outcomes()
    return ServiceDefinition(
        name="dosing",
        title="carecoord dosing review",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(jurisdictions),
        relations=(care_relation_lookup(care_relations),),
        migrations_dir=MIGRATIONS,
        routers=(routes.build_router(titration, definitions), fhir_router("dosing", fhir.RESOURCES)),
        register_handlers=handlers.register_with(titration, definitions),
    )
