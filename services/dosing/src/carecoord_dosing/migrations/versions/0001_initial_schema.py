"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 07:37:57.316634
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from carecoord_shared.messaging.migrations import (
    create_messaging_tables_v1,
    drop_messaging_tables_v1,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables_v1()
    op.create_table(
        "treatment_holds",
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_decision", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("hold_id"),
    )
    op.create_index(op.f("ix_treatment_holds_patient_id"), "treatment_holds", ["patient_id"], unique=False)
    op.create_table(
        "treatment_plans",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("starting_dose_mg", sa.Integer(), nullable=False),
        sa.Column("max_dose_mg", sa.Integer(), nullable=False),
        sa.Column("max_step_mg", sa.Integer(), nullable=False),
        sa.Column("planned_sessions", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("plan_id"),
    )
    op.create_index(
        "uq_treatment_plans_live_per_patient",
        "treatment_plans",
        ["patient_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('draft', 'active', 'paused')"),
    )
    op.create_table(
        "plan_transitions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["treatment_plans.plan_id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_plan_transitions_plan_id"), "plan_transitions", ["plan_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_plan_transitions_plan_id"), table_name="plan_transitions")
    op.drop_table("plan_transitions")
    op.drop_index(
        "uq_treatment_plans_live_per_patient",
        table_name="treatment_plans",
        postgresql_where=sa.text("status IN ('draft', 'active', 'paused')"),
    )
    op.drop_table("treatment_plans")
    op.drop_index(op.f("ix_treatment_holds_patient_id"), table_name="treatment_holds")
    op.drop_table("treatment_holds")
    drop_messaging_tables_v1()
