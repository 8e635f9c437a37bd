"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 07:37:59.273012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

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
        "clinician_reviews",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("triggers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("review_id"),
    )
    op.create_index(
        "uq_clinician_reviews_open_per_reason",
        "clinician_reviews",
        ["patient_id", "reason"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_table(
        "side_effect_reports",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("symptoms", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("onset_minutes_after_dose", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("escalated", sa.Boolean(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_index(op.f("ix_side_effect_reports_patient_id"), "side_effect_reports", ["patient_id"], unique=False)
    op.create_table(
        "treatment_holds",
        sa.Column("hold_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="requested", nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("hold_id"),
    )
    op.create_index(op.f("ix_treatment_holds_patient_id"), "treatment_holds", ["patient_id"], unique=False)
    op.create_index(op.f("ix_treatment_holds_review_id"), "treatment_holds", ["review_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_treatment_holds_review_id"), table_name="treatment_holds")
    op.drop_index(op.f("ix_treatment_holds_patient_id"), table_name="treatment_holds")
    op.drop_table("treatment_holds")
    op.drop_index(op.f("ix_side_effect_reports_patient_id"), table_name="side_effect_reports")
    op.drop_table("side_effect_reports")
    op.drop_index(
        "uq_clinician_reviews_open_per_reason",
        table_name="clinician_reviews",
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.drop_table("clinician_reviews")
    drop_messaging_tables_v1()
