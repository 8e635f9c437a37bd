"""Composition root of the billing service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from pydantic import SecretStr

from carecoord_shared.auth import care_relation_lookup, jurisdiction_lookup
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.http.journal import journal_router
from carecoord_shared.service import ServiceDefinition

from . import fees, fhir, handlers, routes
from .demographics import IntakeDemographics, development_token
from .exchange import ExchangeService
from .models import audit, care_relations, journal, messaging, metadata, patients
from .settings import BillingSettings, ProviderIdentity

MIGRATIONS = Path(__file__).parent / "migrations"


def _intake_token(settings: BillingSettings) -> SecretStr | Callable[[], SecretStr]:
    if settings.intake_api_token.get_secret_value():
        return settings.intake_api_token
    if settings.auth_jwt_public_key:
        # Intake then trusts only the identity provider's tokens: a minted one would be refused at every claim file.
        raise RuntimeError("set CARECOORD_INTAKE_API_TOKEN to a service token from the identity provider")
    return development_token(
        settings.auth_jwt_secret.get_secret_value(), issuer=settings.auth_issuer, audience=settings.auth_audience
    )


def build(settings: BillingSettings) -> ServiceDefinition:
    fee_schedule = fees.load()
    demographics = IntakeDemographics(
        settings.intake_url, _intake_token(settings), timeout_s=settings.demographics_timeout_s
    )
    exchange = ExchangeService(settings, fee_schedule, demographics)
    return ServiceDefinition(
        name="billing",
        title="carecoord billing and insurance",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        relations=(care_relation_lookup(care_relations),),
        migrations_dir=MIGRATIONS,
        routers=(
            journal_router(journal),
            routes.build_router(exchange),
            fhir_router("billing", fhir.resources(ProviderIdentity())),
        ),
        register_handlers=partial(
            handlers.register,
            fees=fee_schedule,
            insurance_states=settings.insurance_states,
            invoice_due_days=settings.invoice_due_days,
        ),
        background=(exchange.run,),
    )
