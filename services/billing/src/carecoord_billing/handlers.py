"""Billing's reactions to events. Thin: each calls the domain inside the consumer's transaction."""

from __future__ import annotations

from carecoord_contracts.dosing import TreatmentPlanCreated, TreatmentPlanPaused, TreatmentPlanResumed
from carecoord_contracts.intake import CoverageDeclared, PatientRegistered
from carecoord_contracts.safety import ClinicianReviewOpened, ClinicianReviewResolved
from carecoord_contracts.scheduling import AppointmentCancelled, AppointmentCompleted
from carecoord_shared.auth import learn_care_relations
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.journal import record_events
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import charges, coverage, diagnoses
from .fees import FeeSchedule
from .models import care_relations, journal


def register(
    consumer: EventConsumer, *, fees: FeeSchedule, insurance_states: frozenset[str], invoice_due_days: int = 30
) -> None:
    learn_care_relations(consumer, care_relations)
    # The journal of what billing heard about plans and reviews (read by operators and tests).
    record_events(
        consumer,
        journal,
        TreatmentPlanPaused,
        TreatmentPlanResumed,
        ClinicianReviewOpened,
        ClinicianReviewResolved,
    )

    @consumer.on(PatientRegistered)
    async def patient_registered(event: PatientRegistered, tx: HandlerTransaction) -> None:
        await coverage.record_patient(tx, patient_id=tx.cause.patient_id, event=event)

    @consumer.on(CoverageDeclared)
    async def coverage_declared(event: CoverageDeclared, tx: HandlerTransaction) -> None:
        await coverage.declare(tx, insurance_states, patient_id=tx.cause.patient_id, event=event)
        await charges.bill_awaiting(tx, fees, patient_id=tx.cause.patient_id, invoice_due_days=invoice_due_days)

    @consumer.on(TreatmentPlanCreated)
    async def plan_created(event: TreatmentPlanCreated, tx: HandlerTransaction) -> None:
        # The clinician's diagnosis: what the patient's claims carry from now on.
        await diagnoses.record(tx, patient_id=tx.cause.patient_id, planned_at=tx.cause.occurred_at, event=event)

    @consumer.on(AppointmentCompleted)
    async def appointment_completed(event: AppointmentCompleted, tx: HandlerTransaction) -> None:
        await charges.charge_completed(
            tx, fees, patient_id=tx.cause.patient_id, event=event, invoice_due_days=invoice_due_days
        )

    @consumer.on(AppointmentCancelled)
    async def appointment_cancelled(event: AppointmentCancelled, tx: HandlerTransaction) -> None:
        await charges.cancelled(tx, patient_id=tx.cause.patient_id, event=event)
