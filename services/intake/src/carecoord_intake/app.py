"""Composition root of the intake service: settings, rules and the PHI cipher, wired by ``serve``, nothing at import."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from carecoord_shared.auth import care_relation_lookup, jurisdiction_lookup, learn_care_relations
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.service import Runtime, ServiceDefinition

from . import consents, fhir, routes, rules
from .intake import Intake
from .models import audit, care_relations, messaging, metadata, patients
from .phi import PhiCipher
from .settings import IntakeSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def _startup_checks(settings: IntakeSettings) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """Said at startup (once logging is configured), not at import."""

    async def warn_of_development_secrets(_runtime: Runtime) -> None:
        if settings.uses_development_secrets:
            structlog.get_logger("carecoord.intake").warning(
                "intake.development_secrets",
                hint="set CARECOORD_PHI_KEYS outside local runs",
            )

    return warn_of_development_secrets


def build(settings: IntakeSettings) -> ServiceDefinition:
    intake = Intake(
        rules=rules.load(settings.eligibility_rules_version),
        cipher=PhiCipher([k.get_secret_value() for k in settings.phi_keys]),
        served_states=settings.served_states,
        consent_texts=consents.load(),
    )
    return ServiceDefinition(
        name="intake",
        title="carecoord intake",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        relations=(care_relation_lookup(care_relations),),
        migrations_dir=MIGRATIONS,
        routers=(routes.build_router(intake), fhir_router("intake", fhir.resources(intake.cipher))),
        # Intake hears only who is in each patient's care (the team, reviews' assignees).
        register_handlers=partial(learn_care_relations, table=care_relations),
        background=(_startup_checks(settings),),
    )
