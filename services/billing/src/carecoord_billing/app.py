"""Composition root of the billing service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.messaging.journal import journal_router
from carecoord_shared.service import ServiceDefinition

from . import api, fees, handlers
from .models import journal, messaging, metadata
from .settings import BillingSettings

settings = BillingSettings()
fee_schedule = fees.load()

definition = ServiceDefinition(
    name="billing",
    title="carecoord billing and insurance",
    metadata=metadata,
    tables=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(journal_router(journal), api.build_router()),
    register_handlers=handlers.register_with(fee_schedule, settings.insurance_states),
)
