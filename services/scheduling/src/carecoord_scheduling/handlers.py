"""Scheduling's reactions to intake, dosing and safety events (beside the event journal)."""

from __future__ import annotations

from carecoord_contracts.dosing import (
    TreatmentPlanActivated,
    TreatmentPlanCreated,
    TreatmentPlanDiscontinued,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_contracts.intake import EligibilityDetermined, PatientRegistered
from carecoord_contracts.safety import ClinicianReviewOpened, ClinicianReviewResolved
from carecoord_shared.auth import learn_care_relations
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.journal import record_events
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import courses
from .models import care_relations, journal


def register(consumer: EventConsumer) -> None:
    # Scheduling sets the care team itself (booking, PUT care-team); it learns the reviews' assignees.
    learn_care_relations(consumer, care_relations, team=False)
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

    @consumer.on(PatientRegistered)
    async def registered(event: PatientRegistered, tx: HandlerTransaction) -> None:
        await courses.remember_patient(tx, tx.cause.patient_id, event.state_of_residence, event.time_zone)
        await courses.book_waiting_courses(tx, tx.cause.patient_id)

    @consumer.on(EligibilityDetermined)
    async def eligibility(event: EligibilityDetermined, tx: HandlerTransaction) -> None:
        await courses.apply_eligibility(tx, tx.cause.patient_id, event)

    @consumer.on(TreatmentPlanCreated)
    async def plan_created(event: TreatmentPlanCreated, tx: HandlerTransaction) -> None:
        await courses.remember_plan(tx, event.plan_id, tx.cause.patient_id, event.planned_sessions, event.cadence_days)

    @consumer.on(TreatmentPlanActivated)
    async def plan_activated(event: TreatmentPlanActivated, tx: HandlerTransaction) -> None:
        await courses.book_course(tx, event.plan_id, tx.cause.patient_id)

    @consumer.on(TreatmentPlanPaused)
    async def plan_paused(event: TreatmentPlanPaused, tx: HandlerTransaction) -> None:
        await courses.hold_dosing_sessions(tx, event.plan_id, tx.cause.patient_id)

    @consumer.on(TreatmentPlanResumed)
    async def plan_resumed(event: TreatmentPlanResumed, tx: HandlerTransaction) -> None:
        await courses.rebook_held_sessions(tx, event.plan_id, tx.cause.patient_id)

    @consumer.on(TreatmentPlanDiscontinued)
    async def plan_discontinued(event: TreatmentPlanDiscontinued, tx: HandlerTransaction) -> None:
        await courses.cancel_remaining(tx, event.plan_id, tx.cause.patient_id)

    @consumer.on(ClinicianReviewOpened)
    async def review_opened(event: ClinicianReviewOpened, tx: HandlerTransaction) -> None:
        await courses.book_review(tx, event.review_id, event.due_at, tx.cause.patient_id, event.priority)
