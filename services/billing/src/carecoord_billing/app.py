"""Composition root of the billing service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.contracts.dosing import TreatmentPlanPaused, TreatmentPlanResumed
from carecoord_shared.contracts.safety import ClinicianReviewOpened, ClinicianReviewResolved
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.journal import journal_router, record_events
from carecoord_shared.service import ServiceDefinition

from .models import journal, messaging, metadata


def register_handlers(consumer: EventConsumer) -> None:
    record_events(
        consumer,
        journal,
        TreatmentPlanPaused,
        TreatmentPlanResumed,
        ClinicianReviewOpened,
        ClinicianReviewResolved,
    )


definition = ServiceDefinition(
    name="billing",
    title="carecoord billing and insurance",
    metadata=metadata,
    tables=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(journal_router(journal),),
    register_handlers=register_handlers,
)
