"""Safety's reactions to events: what the patient app submits, and the dosing
sessions scheduling books and dosing authorises or refuses (for the post-dose
check-in timers, which run from the authorisation; see sessions.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from carecoord_contracts.common import AppointmentType
from carecoord_contracts.dosing import (
    DoseApproved,
    DoseChangeRefused,
    DosingSessionAuthorised,
    DosingSessionRefused,
    TreatmentPlanActivated,
    TreatmentPlanCompleted,
    TreatmentPlanCreated,
    TreatmentPlanDiscontinued,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_contracts.scheduling import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentNoShow,
    AppointmentRescheduled,
    ReviewAppointmentUnavailable,
)
from carecoord_shared.auth import learn_jurisdictions
from carecoord_shared.auth.care import learn_care_relations
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import assignment, consent, observations, plan_view, reviews, sessions
from .models import care_relations, jurisdictions
from .rules import RuleSet
from .timers import Clock

RECORDERS = (
    (SideEffectReportSubmitted, observations.record_report),
    (VitalsSubmitted, observations.record_vitals),
    (MoodCheckInSubmitted, observations.record_checkin),
)


def register_with(rules: RuleSet, clock: Clock) -> Callable[[EventConsumer], None]:
    def register(consumer: EventConsumer) -> None:
        learn_jurisdictions(consumer, jurisdictions)
        # The care team (prescriber: the first choice for a review; team members reach the chart). Review
        # assignees are safety's own: it writes them with the assignment, so it does not learn them back.
        learn_care_relations(consumer, care_relations, reviews=False)
        consent.register(consumer, rules, clock)

        for event_type, record in RECORDERS:
            consumer.on(event_type)(_recording(record, rules, clock))

        @consumer.on(AssessmentScored)
        async def screened(event: AssessmentScored, tx: HandlerTransaction) -> None:
            await observations.record_screening(
                tx, rules, patient_id=tx.cause.patient_id, observation=event, now=clock()
            )

        @consumer.on(AppointmentBooked)
        async def booked(event: AppointmentBooked, tx: HandlerTransaction) -> None:
            if event.appointment_type is AppointmentType.dosing_session:
                await sessions.booked(
                    tx,
                    rules,
                    appointment_id=event.appointment_id,
                    patient_id=tx.cause.patient_id,
                    starts_at=event.starts_at,
                    now=clock(),
                )

        @consumer.on(AppointmentRescheduled)
        async def rescheduled(event: AppointmentRescheduled, tx: HandlerTransaction) -> None:
            if event.appointment_type is AppointmentType.dosing_session:
                await sessions.booked(
                    tx,
                    rules,
                    appointment_id=event.appointment_id,
                    patient_id=tx.cause.patient_id,
                    starts_at=event.starts_at,
                    now=clock(),
                )

        @consumer.on(AppointmentCancelled)
        async def cancelled(event: AppointmentCancelled, tx: HandlerTransaction) -> None:
            if event.appointment_type is AppointmentType.dosing_session:
                await sessions.cancelled(
                    tx, appointment_id=event.appointment_id, patient_id=tx.cause.patient_id, now=clock()
                )

        @consumer.on(AppointmentNoShow)
        async def no_show(event: AppointmentNoShow, tx: HandlerTransaction) -> None:
            if event.appointment_type is AppointmentType.dosing_session:
                await sessions.no_show(
                    tx,
                    rules,
                    appointment_id=event.appointment_id,
                    patient_id=tx.cause.patient_id,
                    starts_at=event.starts_at,
                    at=_when(tx, clock),
                    now=clock(),
                )

        # No visit before the review is due: the clinician on call takes it (domain/assignment.py).
        @consumer.on(ReviewAppointmentUnavailable)
        async def unbookable(event: ReviewAppointmentUnavailable, tx: HandlerTransaction) -> None:
            await assignment.unbookable(tx, event.review_id, tx.cause.patient_id, now=clock())

        # The dose: dosing's authorisation names scheduling's appointment id; its time is the envelope's occurred_at.
        @consumer.on(DosingSessionAuthorised)
        async def authorised(event: DosingSessionAuthorised, tx: HandlerTransaction) -> None:
            await sessions.authorised(
                tx,
                rules,
                appointment_id=event.appointment_id,
                patient_id=tx.cause.patient_id,
                authorisation_id=event.authorisation_id,
                at=_when(tx, clock),
                now=clock(),
            )

        @consumer.on(DosingSessionRefused)
        async def refused(event: DosingSessionRefused, tx: HandlerTransaction) -> None:
            await sessions.refused(
                tx,
                appointment_id=event.appointment_id,
                patient_id=tx.cause.patient_id,
                reason=event.reason,
                at=_when(tx, clock),
                now=clock(),
            )

        # --- the plan read model (plan_view) and dosing's refusals of a review's dose change ---

        @consumer.on(TreatmentPlanCreated)
        async def plan_created(event: TreatmentPlanCreated, tx: HandlerTransaction) -> None:
            await plan_view.created(
                tx,
                patient_id=tx.cause.patient_id,
                plan_id=event.plan_id,
                starting_dose_mg=event.starting_dose_mg,
                max_dose_mg=event.max_dose_mg,
                max_step_mg=event.max_step_mg,
            )

        for plan_event, plan_status in PLAN_STATUSES:
            consumer.on(plan_event)(_plan_status(plan_status))

        @consumer.on(DoseApproved)
        async def dose_approved(event: DoseApproved, tx: HandlerTransaction) -> None:
            await plan_view.changed(
                tx, patient_id=tx.cause.patient_id, plan_id=event.plan_id, current_dose_mg=event.approved_dose_mg
            )

        @consumer.on(DoseChangeRefused)
        async def dose_change_refused(event: DoseChangeRefused, tx: HandlerTransaction) -> None:
            await reviews.dose_change_refused(
                tx,
                patient_id=tx.cause.patient_id,
                hold_id=event.hold_id,
                review_id=event.review_id,
                reason=event.reason,
                now=clock(),
            )

    return register


def _when(tx: HandlerTransaction, clock: Clock) -> datetime:
    """When the event happened: the producer's occurred_at, but never later than it reached us (a producer
    clock running ahead would start the post-dose timers late)."""
    return min(tx.cause.occurred_at, clock())


PLAN_STATUSES = (
    (TreatmentPlanActivated, "active"),
    (TreatmentPlanPaused, "paused"),
    (TreatmentPlanResumed, "active"),
    (TreatmentPlanDiscontinued, "discontinued"),
    (TreatmentPlanCompleted, "completed"),
)


def _plan_status(plan_status: str) -> Callable[[Any, HandlerTransaction], Awaitable[None]]:
    async def handle(event: Any, tx: HandlerTransaction) -> None:
        await plan_view.changed(tx, patient_id=tx.cause.patient_id, plan_id=event.plan_id, status=plan_status)

    return handle


def _recording(record: Any, rules: RuleSet, clock: Clock) -> Callable[[Any, HandlerTransaction], Awaitable[None]]:
    async def handle(event: Any, tx: HandlerTransaction) -> None:
        await record(tx, rules, patient_id=tx.cause.patient_id, observation=event, source="patient-app", now=clock())

    return handle
