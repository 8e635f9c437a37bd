"""Engagement's delivery tables (its own database): one row per notification, the staff directory,
and each patient's SMS consent as learnt from intake's events.

No patient contact detail is stored here: the sender fetches it from intake when it sends and
forgets it (ADR 0017). Staff contacts are the practice's own directory (not PHI; still never logged).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)

STATES = ("pending", "sending", "sent", "failed", "suppressed")


def notifications_table(metadata: MetaData) -> Table:
    return Table(
        "notifications",
        metadata,
        # Also the mail's Message-ID (<id@domain>) and the SMS provider's idempotency key: stable across retries.
        Column("id", Uuid, primary_key=True),
        Column("cause_event_id", Uuid, nullable=False),
        Column("recipient_kind", String(10), nullable=False),
        # A patient id (as text) or a staff id.
        Column("recipient_id", String(64), nullable=False),
        Column("channel", String(10), nullable=False),
        Column("template", String(40), nullable=False),
        Column("state", String(12), nullable=False, server_default="pending"),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # While `sending`: until when the sender that took the row owns it; after that another may retry it.
        Column("lease_until", DateTime(timezone=True)),
        # A code (smtp_temporary, no_contact, ...), never a server's text: that can quote the address.
        Column("last_error", String(40)),
        Column("sent_at", DateTime(timezone=True)),
        Column("provider_message_id", String(128)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        UniqueConstraint("cause_event_id", "recipient_id", "channel", name="uq_notifications_cause_recipient_channel"),
        CheckConstraint(f"state IN {STATES}", name="ck_notifications_state"),
        Index("ix_notifications_due", "state", "next_attempt_at"),
    )


def staff_contacts_table(metadata: MetaData) -> Table:
    return Table(
        "staff_contacts",
        metadata,
        Column("staff_id", String(64), primary_key=True),
        Column("email", String(254)),
        Column("phone", String(20)),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(128), nullable=False),
    )


def patient_channels_table(metadata: MetaData) -> Table:
    return Table(
        "patient_channels",
        metadata,
        Column("patient_id", Uuid, primary_key=True),
        # A signed sms_contact consent in force (SMS is opt-in); email needs no consent of its own.
        Column("sms_opted_in", Boolean, nullable=False),
        # When the consent was signed or withdrawn: only a later event changes the row.
        Column("changed_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class NotifyTables:
    notifications: Table
    staff_contacts: Table
    patient_channels: Table


def notify_tables(metadata: MetaData) -> NotifyTables:
    return NotifyTables(notifications_table(metadata), staff_contacts_table(metadata), patient_channels_table(metadata))
