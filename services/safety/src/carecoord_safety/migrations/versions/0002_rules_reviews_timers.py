"""Full escalation rules: vitals, mood check-ins, review triggers and worklist, durable timers.

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


def _assessment() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("fired", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
        sa.Column("triggers", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False),
    ]


def upgrade() -> None:
    op.drop_column("side_effect_reports", "rule_id")
    op.drop_column("side_effect_reports", "review_id")
    op.add_column(
        "side_effect_reports", sa.Column("fired", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False)
    )
    op.add_column(
        "side_effect_reports", sa.Column("triggers", JSONB, server_default=sa.text("'[]'::jsonb"), nullable=False)
    )

    op.add_column("clinician_reviews", sa.Column("priority_rank", sa.Integer(), server_default="1", nullable=False))
    op.add_column("clinician_reviews", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("clinician_reviews", sa.Column("acknowledged_by", sa.String(length=64), nullable=True))
    op.add_column("clinician_reviews", sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("clinician_reviews", sa.Column("resolution_note", sa.Text(), nullable=True))
    op.execute(
        "UPDATE clinician_reviews SET priority_rank = CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 ELSE 1 END"
    )
    op.create_index("ix_clinician_reviews_worklist", "clinician_reviews", ["status", "priority_rank", "due_at"])

    op.create_table(
        "vitals_readings",
        sa.Column("reading_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("systolic", sa.Integer(), nullable=False),
        sa.Column("diastolic", sa.Integer(), nullable=False),
        sa.Column("heart_rate", sa.Integer(), nullable=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("context", sa.String(length=20), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("out_of_limits", sa.Boolean(), nullable=False),
        *_assessment(),
        sa.PrimaryKeyConstraint("reading_id"),
    )
    op.create_index(op.f("ix_vitals_readings_patient_id"), "vitals_readings", ["patient_id"])
    op.create_table(
        "mood_checkins",
        sa.Column("checkin_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("phq9_items", JSONB, nullable=True),
        sa.Column("pcl5_items", JSONB, nullable=True),
        sa.Column("phq9_total", sa.Integer(), nullable=True),
        sa.Column("phq9_item9", sa.Integer(), nullable=True),
        sa.Column("pcl5_total", sa.Integer(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_assessment(),
        sa.PrimaryKeyConstraint("checkin_id"),
    )
    op.create_index(op.f("ix_mood_checkins_patient_id"), "mood_checkins", ["patient_id"])
    op.create_table(
        "review_triggers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("rule_ids", JSONB, nullable=False),
        sa.Column("triggers", JSONB, nullable=False),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["clinician_reviews.review_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_review_triggers_review_id"), "review_triggers", ["review_id"])
    op.create_table(
        "dosing_sessions",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    op.create_index(op.f("ix_dosing_sessions_patient_id"), "dosing_sessions", ["patient_id"])
    op.create_table(
        "timers",
        sa.Column("timer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("timer_id"),
        sa.UniqueConstraint("kind", "subject_id", name="uq_timers_kind_subject"),
    )
    op.create_index(
        "ix_timers_pending", "timers", ["due_at"], postgresql_where=sa.text("fired_at IS NULL AND cancelled_at IS NULL")
    )


def downgrade() -> None:
    op.drop_table("timers")
    op.drop_table("dosing_sessions")
    op.drop_table("review_triggers")
    op.drop_table("mood_checkins")
    op.drop_table("vitals_readings")
    op.drop_index("ix_clinician_reviews_worklist", table_name="clinician_reviews")
    for column in ("resolution_note", "overdue_at", "acknowledged_by", "acknowledged_at", "priority_rank"):
        op.drop_column("clinician_reviews", column)
    op.drop_column("side_effect_reports", "triggers")
    op.drop_column("side_effect_reports", "fired")
    op.add_column("side_effect_reports", sa.Column("review_id", sa.Uuid(), nullable=True))
    op.add_column("side_effect_reports", sa.Column("rule_id", sa.String(length=64), nullable=True))
