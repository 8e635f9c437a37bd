"""Composition root of the billing service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.messaging.journal import journal_router
from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.service import ServiceDefinition

from . import api, fees, handlers
from .demographics import IntakeDemographics
from .exchange import exchange_lifespan
from .models import audit, journal, messaging, metadata, patients
from .settings import BillingSettings

settings = BillingSettings()
fee_schedule = fees.load()
demographics = IntakeDemographics(settings.intake_url, settings.internal_api_token, timeout_s=settings.demographics_timeout_s)

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
