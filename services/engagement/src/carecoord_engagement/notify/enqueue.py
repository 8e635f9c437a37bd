"""Notifications written in the transaction of the event that causes them; the sender sends them after commit.

One row per (cause event, recipient, channel), inserted with ON CONFLICT DO NOTHING: a redelivered
or replayed cause adds nothing, so each cause reaches each recipient on each channel at most once
(the sender makes it exactly once, sender.py). Which channels a patient gets:

- safety outreach: email, and SMS too when the patient has opted in (a signed sms_contact
  consent): reaching them matters more than the channel;
- anything else: SMS when opted in (the patient chose to be texted), else email.

Staff pages go to both email and SMS; a channel without an address in the staff directory is
suppressed at send time (no_contact), so adding the address later does not resend an old page.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from .tables import NotifyTables
from .templates import Channel, RecipientKind, Template, spec


async def sms_opted_in(session: AsyncSession, tables: NotifyTables, patient_id: uuid.UUID) -> bool:
    table = tables.patient_channels
    opted = await session.scalar(select(table.c.sms_opted_in).where(table.c.patient_id == patient_id))
    return bool(opted)


async def record_sms_consent(
    session: AsyncSession, tables: NotifyTables, *, patient_id: uuid.UUID, opted_in: bool, at: datetime
) -> None:
    """ConsentSigned / ConsentWithdrawn of the sms_contact document; an older event than the one recorded is ignored."""
    table = tables.patient_channels
    statement = insert(table).values(patient_id=patient_id, sms_opted_in=opted_in, changed_at=at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.patient_id],
            set_={"sms_opted_in": statement.excluded.sms_opted_in, "changed_at": statement.excluded.changed_at},
            where=table.c.changed_at < statement.excluded.changed_at,
        )
    )


async def _insert(
    session: AsyncSession,
    tables: NotifyTables,
    *,
    cause_event_id: uuid.UUID,
    kind: RecipientKind,
    recipient_id: str,
    template: Template,
    channels: list[Channel],
) -> list[uuid.UUID]:
    if spec(template).recipient is not kind:
        raise ValueError(f"template {template} is not for a {kind}")
    table = tables.notifications
    rows = [
        {
            "id": uuid.uuid4(),
            "cause_event_id": cause_event_id,
            "recipient_kind": kind.value,
            "recipient_id": recipient_id,
            "channel": channel.value,
            "template": template.value,
        }
        for channel in channels
    ]
    inserted = await session.scalars(
        insert(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[table.c.cause_event_id, table.c.recipient_id, table.c.channel])
        .returning(table.c.id)
    )
    return list(inserted)


async def notify_patient(
    session: AsyncSession,
    tables: NotifyTables,
    *,
    cause_event_id: uuid.UUID,
    patient_id: uuid.UUID,
    template: Template,
) -> list[uuid.UUID]:
    """The patient's notification rows for this cause (ids of the rows this call inserted; [] on a redelivery)."""
    texted = await sms_opted_in(session, tables, patient_id)
    if template is Template.safety_outreach:
        channels = [Channel.email, Channel.sms] if texted else [Channel.email]
    else:
        channels = [Channel.sms] if texted else [Channel.email]
    return await _insert(
        session,
        tables,
        cause_event_id=cause_event_id,
        kind=RecipientKind.patient,
        recipient_id=str(patient_id),
        template=template,
        channels=channels,
    )


async def page_staff(
    session: AsyncSession,
    tables: NotifyTables,
    *,
    cause_event_id: uuid.UUID,
    staff_id: str,
    template: Template = Template.review_escalated,
) -> list[uuid.UUID]:
    """A page to one staff member by email and SMS (ids of the rows this call inserted; [] on a redelivery)."""
    return await _insert(
        session,
        tables,
        cause_event_id=cause_event_id,
        kind=RecipientKind.staff,
        recipient_id=staff_id,
        template=template,
        channels=[Channel.email, Channel.sms],
    )
