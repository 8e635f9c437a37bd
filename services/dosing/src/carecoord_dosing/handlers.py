"""Dosing's reactions to other services' events."""

from __future__ import annotations

from collections.abc import Callable

from carecoord_contracts.common import AppointmentType, ConsentDocument
from carecoord_contracts.intake import AssessmentScored, ConsentSigned, ConsentWithdrawn
from carecoord_contracts.safety import (
    SEEK_EMERGENCY_CARE,
    MoodCheckInRecorded,
    SideEffectReported,
    TreatmentHoldReleased,
    TreatmentHoldRequested,
    VitalsRecorded,
)
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_shared.auth import learn_care_relations, learn_jurisdictions
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import outcome_tracking, plans
from .domain import TitrationRules
from .models import care_relations, jurisdictions
from .outcomes import OutcomeDefinitions


def register_with(rules: TitrationRules, definitions: OutcomeDefinitions) -> Callable[[EventConsumer], None]:
    def register(consumer: EventConsumer) -> None:
        learn_jurisdictions(consumer, jurisdictions)
        learn_care_relations(consumer, care_relations)

        @consumer.on(TreatmentHoldRequested)
        async def hold_requested(event: TreatmentHoldRequested, tx: HandlerTransaction) -> None:
            await plans.open_hold(
                tx,
                hold_id=event.hold_id,
                patient_id=tx.cause.patient_id,
                review_id=event.review_id,
                reason=event.reason,
            )

        @consumer.on(TreatmentHoldReleased)
        async def hold_released(event: TreatmentHoldReleased, tx: HandlerTransaction) -> None:
            await plans.release_hold(
                tx,
                hold_id=event.hold_id,
                patient_id=tx.cause.patient_id,
                decision=event.decision,
                rules=rules,
                review_id=event.review_id,
                dose_mg=event.dose_mg,
                decided_by=event.decided_by,
            )

        @consumer.on(AppointmentCompleted)
        async def session_completed(event: AppointmentCompleted, tx: HandlerTransaction) -> None:
            if event.appointment_type is AppointmentType.dosing_session:
                await plans.session_completed(tx, patient_id=tx.cause.patient_id, rules=rules)
                # The session's start is the dose's time; the earliest is day 0 of the outcomes.
                await outcome_tracking.record_session(
                    tx, appointment_id=event.appointment_id, plan_id=event.plan_id, started_at=event.started_at
                )
                await outcome_tracking.announce_milestones(tx, tx.cause.patient_id, definitions)

        @consumer.on(VitalsRecorded)
        async def vitals(event: VitalsRecorded, tx: HandlerTransaction) -> None:
            await plans.record_observation(
                tx,
                kind="vitals",
                observed_at=event.measured_at,
                context=event.context.value,
                within_limits=event.within_limits,
                appointment_id=event.appointment_id,
                emergency=SEEK_EMERGENCY_CARE in event.advice,
            )

        @consumer.on(SideEffectReported)
        async def side_effect(event: SideEffectReported, tx: HandlerTransaction) -> None:
            await plans.record_observation(
                tx,
                kind="side_effect",
                observed_at=tx.cause.occurred_at,
                grade=event.grade,
                symptoms=list(event.symptoms),
                emergency=SEEK_EMERGENCY_CARE in event.advice,
            )

        @consumer.on(MoodCheckInRecorded)
        async def mood(event: MoodCheckInRecorded, tx: HandlerTransaction) -> None:
            await plans.record_observation(
                tx,
                kind="mood",
                observed_at=tx.cause.occurred_at,
                phq9_total=event.phq9_total,
                pcl5_total=event.pcl5_total,
                gad7_total=event.gad7_total,
            )
            await outcome_tracking.announce_milestones(tx, tx.cause.patient_id, definitions)

        @consumer.on(AssessmentScored)
        async def assessment_scored(event: AssessmentScored, tx: HandlerTransaction) -> None:
            # Intake's scores are the titration baselines (read at proposal time, so order-independent).
            await plans.record_assessment(
                tx, instrument=event.instrument, total=event.total, scored_at=tx.cause.occurred_at
            )
            # A baseline arriving after the follow-ups (topics are not ordered with each other) may reach one.
            await outcome_tracking.announce_milestones(tx, tx.cause.patient_id, definitions)

        # Only the treatment consent matters to dosing; telehealth and text-message consent do not dose.
        @consumer.on(ConsentSigned)
        async def consent_signed(event: ConsentSigned, tx: HandlerTransaction) -> None:
            if event.document is ConsentDocument.ketamine_treatment:
                await plans.consent_signed(tx, document_version=event.document_version, signed_at=event.signed_at)

        @consumer.on(ConsentWithdrawn)
        async def consent_withdrawn(event: ConsentWithdrawn, tx: HandlerTransaction) -> None:
            if event.document is ConsentDocument.ketamine_treatment:
                await plans.consent_withdrawn(
                    tx, document_version=event.document_version, withdrawn_at=event.withdrawn_at
                )

    return register
