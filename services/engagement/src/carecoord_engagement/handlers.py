"""Engagement's reactions to events. Thin: each opens or closes tasks (tasks.py) and queues the messages
that go with them (notifications.py) in the consumer's transaction, so a task and its message are both
there or neither is, and a redelivered event adds nothing (the inbox, and one task per cause)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from carecoord_contracts.billing import ClaimDenied
from carecoord_contracts.common import ConsentDocument
from carecoord_contracts.intake import ConsentSigned, ConsentWithdrawn, PatientRegistered
from carecoord_contracts.safety import (
    CheckInMissed,
    ClinicianReviewAcknowledged,
    ClinicianReviewAssigned,
    ClinicianReviewResolved,
)
from carecoord_contracts.scheduling import ReviewAppointmentUnavailable
from carecoord_shared.auth.care import learn_care_relations
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from . import domain, notifications, tasks
from .domain import Kind, Owner, OwnerRole
from .models import care_relations
from .settings import EngagementSettings


def register(consumer: EventConsumer, *, settings: EngagementSettings) -> None:
    # Who is on each patient's care team, and who has each review: a task's owner, and who may work it.
    learn_care_relations(consumer, care_relations)
    call_within = timedelta(minutes=settings.call_patient_due_minutes)
    escalation_within = timedelta(minutes=settings.escalated_review_due_minutes)
    claim_within = timedelta(days=settings.denied_claim_due_days)

    @consumer.on(PatientRegistered)
    async def patient_registered(event: PatientRegistered, tx: HandlerTransaction) -> None:
        await tasks.record_patient(
            tx, tx.cause.patient_id, event.state_of_residence, event.time_zone, now=datetime.now(UTC)
        )

    @consumer.on(ConsentSigned)
    async def consent_signed(event: ConsentSigned, tx: HandlerTransaction) -> None:
        if event.document is ConsentDocument.sms_contact:
            await notifications.sms_consent(tx, opted_in=True, at=event.signed_at)

    @consumer.on(ConsentWithdrawn)
    async def consent_withdrawn(event: ConsentWithdrawn, tx: HandlerTransaction) -> None:
        if event.document is ConsentDocument.sms_contact:  # texts stop, pending ones included (sender.py)
            await notifications.sms_consent(tx, opted_in=False, at=event.withdrawn_at)

    @consumer.on(CheckInMissed)
    async def check_in_missed(event: CheckInMissed, tx: HandlerTransaction) -> None:
        patient_id = tx.cause.patient_id
        await tasks.open_task(
            tx.session,
            patient_id=patient_id,
            kind=Kind.call_patient,
            cause_event_id=tx.cause.event_id,
            subject_id=event.appointment_id,
            owner=domain.call_owner(await tasks.prescriber_of(tx, patient_id)),
            due_at=domain.due_after(tx.cause.occurred_at, call_within),
            reason="check_in_missed",
        )
        # Whoever calls, the patient hears at once that their care team is trying to reach them.
        await notifications.reach_out_to_patient(tx)

    @consumer.on(ClinicianReviewAssigned)
    async def review_assigned(event: ClinicianReviewAssigned, tx: HandlerTransaction) -> None:
        if event.escalation_level < 1:
            return  # the prescriber's own review: on their worklist in safety, nobody paged
        now = datetime.now(UTC)
        task_id = await tasks.open_task(
            tx.session,
            patient_id=tx.cause.patient_id,
            kind=Kind.escalated_review,
            cause_event_id=tx.cause.event_id,
            subject_id=event.review_id,
            owner=domain.escalation_owner(event.assignee_id),
            due_at=domain.due_after(now, escalation_within),
            reason=f"{event.basis.value}:{event.escalation_level}",
        )
        if task_id is None:
            return
        if domain.pages_for(event.escalation_level, event.assignee_id):
            assert event.assignee_id is not None
            await notifications.page(tx, event.assignee_id)
        # Whoever had the review before is no longer the one to act.
        await tasks.close_open(
            tx,
            event.review_id,
            {Kind.escalated_review},
            outcome=domain.SUPERSEDED,
            closed_by=domain.SYSTEM,
            now=now,
            except_task=task_id,
        )

    @consumer.on(ClinicianReviewAcknowledged)
    async def review_acknowledged(event: ClinicianReviewAcknowledged, tx: HandlerTransaction) -> None:
        await tasks.close_open(
            tx,
            event.review_id,
            domain.CLOSED_BY_ACKNOWLEDGEMENT,
            outcome=domain.REVIEW_ACKNOWLEDGED,
            closed_by=event.acknowledged_by,
            now=datetime.now(UTC),
        )

    @consumer.on(ClinicianReviewResolved)
    async def review_resolved(event: ClinicianReviewResolved, tx: HandlerTransaction) -> None:
        await tasks.close_open(
            tx,
            event.review_id,
            domain.CLOSED_BY_RESOLUTION,
            outcome=domain.REVIEW_RESOLVED,
            closed_by=event.resolved_by or domain.SYSTEM,
            now=datetime.now(UTC),
        )

    @consumer.on(ReviewAppointmentUnavailable)
    async def review_unavailable(event: ReviewAppointmentUnavailable, tx: HandlerTransaction) -> None:
        await tasks.open_task(
            tx.session,
            patient_id=tx.cause.patient_id,
            kind=Kind.arrange_review,
            cause_event_id=tx.cause.event_id,
            subject_id=event.review_id,
            owner=Owner(None, OwnerRole.operator),
            due_at=event.due_at,
            reason=event.reason,
        )

    @consumer.on(ClaimDenied)
    async def claim_denied(event: ClaimDenied, tx: HandlerTransaction) -> None:
        await tasks.open_task(
            tx.session,
            patient_id=tx.cause.patient_id,
            kind=Kind.denied_claim,
            cause_event_id=tx.cause.event_id,
            subject_id=event.claim_id,
            owner=Owner(None, OwnerRole.billing),
            due_at=domain.due_after(tx.cause.occurred_at, claim_within),
            reason=event.reason_code,
        )
