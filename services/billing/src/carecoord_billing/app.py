"""Composition root of the billing service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.config import ServiceSettings
from carecoord_shared.messaging.journal import journal_router
from carecoord_shared.service import ServiceDefinition

from . import api, fees, handlers
from .demographics import IntakeDemographics, development_token
from .exchange import exchange_lifespan
from .models import audit, journal, messaging, metadata, patients
from .settings import BillingSettings

settings = BillingSettings()
fee_schedule = fees.load()


def _intake_token(settings: BillingSettings, auth: ServiceSettings) -> SecretStr | Callable[[], SecretStr]:
    if settings.intake_api_token.get_secret_value():
        return settings.intake_api_token
    if auth.auth_jwt_public_key:
        # Intake then trusts only the identity provider's tokens: a minted one would be refused at every claim file.
        raise RuntimeError("set CARECOORD_INTAKE_API_TOKEN to a service token from the identity provider")
    return development_token(
        auth.auth_jwt_secret.get_secret_value(), issuer=auth.auth_issuer, audience=auth.auth_audience
    )


demographics = IntakeDemographics(
    settings.intake_url,
    _intake_token(settings, ServiceSettings(service="billing")),
    timeout_s=settings.demographics_timeout_s,
)

definition = ServiceDefinition(
    name="billing",
    title="carecoord billing and insurance",
    metadata=metadata,
    tables=messaging,
    audit=audit,
    jurisdiction_of=jurisdiction_lookup(patients),
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(journal_router(journal), api.build_router(exchange_lifespan(settings, fee_schedule, demographics))),
    register_handlers=handlers.register_with(fee_schedule, settings.insurance_states, settings.invoice_due_days),
)
