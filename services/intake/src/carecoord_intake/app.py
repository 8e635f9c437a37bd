"""Composition root of the intake service: settings, rules and the PHI cipher, wired once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.service import ServiceDefinition

from . import api, rules
from .intake import Intake
from .models import audit, messaging, metadata, patients
from .phi import PhiCipher
from .settings import IntakeSettings


def _startup_checks(settings: IntakeSettings) -> APIRouter:
    """Said at startup (once logging is configured), not at import."""

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        if settings.uses_development_secrets:
            structlog.get_logger("carecoord.intake").warning(
                "intake.development_secrets",
                hint="set CARECOORD_PHI_KEYS outside local runs",
            )
        yield

    return APIRouter(lifespan=lifespan)


def build(settings: IntakeSettings) -> ServiceDefinition:
    intake = Intake(
        rules=rules.load(settings.eligibility_rules_version),
        cipher=PhiCipher([k.get_secret_value() for k in settings.phi_keys]),
        served_states=settings.served_states,
    )
    return ServiceDefinition(
        name="intake",
        title="carecoord intake",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        migrations_dir=Path(__file__).parent / "migrations",
        routers=(api.build_router(intake), _startup_checks(settings)),
    )


definition = build(IntakeSettings())
