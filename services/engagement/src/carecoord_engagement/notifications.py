"""The messages that go with a task, queued in the transaction that opens it (notify/enqueue.py writes the
rows, the sender sends them after commit), and what happens when one cannot be delivered.

- A missed check-in: the patient gets safety outreach ("your care team is trying to reach you"), at any
  hour (quiet hours do not hold up safety), by email and, if they agreed to texts, SMS.
- An escalation to someone (level 1 on call, 2 the clinical lead): that person is paged by email and SMS.
- A message that failed for good (attempts used, no address): an operator's task to reach the person
  another way, so that nobody is left believing a page went out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.messaging.unit_of_work import HandlerTransaction

from .domain import Kind, Owner, OwnerRole
from .models import notify, tasks
from .notify import enqueue
from .notify.sender import NotificationRow
from .notify.templates import Template
from .tasks import open_task

log = structlog.get_logger("carecoord.engagement.notifications")


async def reach_out_to_patient(tx: HandlerTransaction) -> list[uuid.UUID]:
    return await enqueue.notify_patient(
        tx.session,
        notify,
        cause_event_id=tx.cause.event_id,
        patient_id=tx.cause.patient_id,
        template=Template.safety_outreach,
    )


async def page(tx: HandlerTransaction, staff_id: str) -> list[uuid.UUID]:
    return await enqueue.page_staff(
        tx.session, notify, cause_event_id=tx.cause.event_id, staff_id=staff_id, template=Template.review_escalated
    )


async def sms_consent(tx: HandlerTransaction, *, opted_in: bool, at: datetime) -> None:
    await enqueue.record_sms_consent(tx.session, notify, patient_id=tx.cause.patient_id, opted_in=opted_in, at=at)


async def delivery_failed(session: AsyncSession, notification: NotificationRow) -> None:
    """The sender's ``on_failed``, in the transaction that marks the message failed: an operator's task,
    due at once, about the task whose message it was (its cause opened both). Once per message."""
    cause = (
        await session.execute(
            select(tasks.c.task_id, tasks.c.patient_id)
            .where(tasks.c.cause_event_id == notification.cause_event_id)
            .order_by(tasks.c.seq)
            .limit(1)
        )
    ).first()
    if cause is None:  # a message no task caused: the metric and the log line are all there is
        log.warning("notify.failed_without_task", notification_id=str(notification.id))
        return
    await open_task(
        session,
        patient_id=cause.patient_id,
        kind=Kind.notification_failed,
        cause_event_id=notification.id,
        subject_id=cause.task_id,
        owner=Owner(None, OwnerRole.operator),
        due_at=datetime.now(UTC),
        # Which message and why, as codes: e.g. review_escalated:sms:no_contact.
        reason=f"{notification.template}:{notification.channel}:{notification.last_error}"[:64],
    )
