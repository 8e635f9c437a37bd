"""Dose proposals and approvals, session authorisations and refusals, safety facts.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.add_column("treatment_plans", sa.Column("approved_dose_mg", sa.Integer(), nullable=True))
    op.add_column("treatment_plans", sa.Column("sessions_completed", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "dose_proposals",
        sa.Column("proposal_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("session_number", sa.Integer(), nullable=False),
        sa.Column("previous_dose_mg", sa.Integer(), nullable=False),
        sa.Column("proposed_dose_mg", sa.Integer(), nullable=False),
        sa.Column("rationale", JSONB, nullable=False),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="proposed", nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("approved_dose_mg", sa.Integer(), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["treatment_plans.plan_id"]),
        sa.PrimaryKeyConstraint("proposal_id"),
    )
    op.create_index(op.f("ix_dose_proposals_plan_id"), "dose_proposals", ["plan_id"])
    op.create_table(
        "session_authorisations",
        sa.Column("authorisation_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("dose_mg", sa.Integer(), nullable=False),
        sa.Column("authorised_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["treatment_plans.plan_id"]),
        sa.PrimaryKeyConstraint("authorisation_id"),
        sa.UniqueConstraint("appointment_id"),
    )
    op.create_table(
        "session_refusals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_session_refusals_appointment_id"), "session_refusals", ["appointment_id"])
    op.create_table(
        "safety_observations",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("symptoms", JSONB, nullable=True),
        sa.Column("context", sa.String(length=20), nullable=True),
        sa.Column("within_limits", sa.Boolean(), nullable=True),
        sa.Column("phq9_total", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_safety_observations_patient", "safety_observations", ["patient_id", "kind", "observed_at"])


def downgrade() -> None:
    op.drop_table("safety_observations")
    op.drop_table("session_refusals")
    op.drop_table("session_authorisations")
    op.drop_table("dose_proposals")
    op.drop_column("treatment_plans", "sessions_completed")
    op.drop_column("treatment_plans", "approved_dose_mg")
