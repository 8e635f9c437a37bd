"""Migration steps for the delivery tables; frozen once released (see carecoord_shared.messaging.migrations
for why): a later change is a new step, never an edit of this one."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def create_notify_v1() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("cause_event_id", sa.Uuid(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=10), nullable=False),
        sa.Column("recipient_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=40), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "cause_event_id", "recipient_id", "channel", name="uq_notifications_cause_recipient_channel"
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'sending', 'sent', 'failed', 'suppressed')", name="ck_notifications_state"
        ),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "staff_contacts",
        sa.Column("staff_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("staff_id"),
    )
    op.create_table(
        "patient_channels",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("sms_opted_in", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def drop_notify_v1() -> None:
    op.drop_table("patient_channels")
    op.drop_table("staff_contacts")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
