"""initial schema: messaging, audit log, idempotency keys, care relations, patients, tasks

Revision ID: 0001
Revises:
Create Date: 2026-12-03 08:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from carecoord_shared.auth.migrations import (
    create_audit_log_v1,
    create_care_relations_v1,
    drop_audit_log_v1,
    drop_care_relations_v1,
)
from carecoord_shared.messaging.migrations import (
    add_outbox_parking_v1,
    create_idempotency_keys_v1,
    create_messaging_tables_v1,
    create_parked_events_v1,
    drop_idempotency_keys_v1,
    drop_messaging_tables_v1,
    drop_outbox_parking_v1,
    drop_parked_events_v1,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables_v1()
    create_parked_events_v1()
    add_outbox_parking_v1()
    create_idempotency_keys_v1()
    create_audit_log_v1()
    create_care_relations_v1()
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("state_of_residence", sa.String(length=2), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cause_event_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("owner_id", sa.String(length=128), nullable=True),
        sa.Column("owner_role", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.Column("closed_by", sa.String(length=128), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
        sa.UniqueConstraint("seq"),
        sa.UniqueConstraint("kind", "cause_event_id", name="uq_tasks_kind_cause"),
        sa.CheckConstraint("state IN ('open', 'closed')", name="ck_tasks_state"),
        sa.CheckConstraint("(state = 'open') = (outcome IS NULL)", name="ck_tasks_closed_with_outcome"),
    )
    op.create_index("ix_tasks_owner", "tasks", ["owner_id", "state", "due_at"])
    op.create_index("ix_tasks_patient", "tasks", ["patient_id", "created_at"])
    op.create_index("ix_tasks_subject", "tasks", ["subject_id", "state"])
    op.create_index("ix_tasks_queue", "tasks", ["state", "due_at", "task_id"])


def downgrade() -> None:
    op.drop_table("tasks")
    op.drop_table("patients")
    drop_care_relations_v1()
    drop_audit_log_v1()
    drop_idempotency_keys_v1()
    drop_outbox_parking_v1()
    drop_parked_events_v1()
    drop_messaging_tables_v1()
