"""Composition root of the scheduling service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.contracts.dosing import (
    TreatmentPlanActivated,
    TreatmentPlanCreated,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_shared.contracts.intake import PatientRegistered
from carecoord_shared.contracts.safety import ClinicianReviewOpened, ClinicianReviewResolved
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.journal import journal_router, record_events
from carecoord_shared.service import ServiceDefinition

from .models import journal, messaging, metadata


def register_handlers(consumer: EventConsumer) -> None:
    record_events(
        consumer,
        journal,
        PatientRegistered,
        TreatmentPlanCreated,
        TreatmentPlanActivated,
        TreatmentPlanPaused,
        TreatmentPlanResumed,
        ClinicianReviewOpened,
        ClinicianReviewResolved,
    )


definition = ServiceDefinition(
    name="scheduling",
    title="carecoord scheduling",
    metadata=metadata,
    tables=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(journal_router(journal),),
    register_handlers=register_handlers,
)
