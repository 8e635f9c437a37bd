"""clinicians, availability, patients, plans and appointments with the no-double-booking constraint

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


def upgrade() -> None:
    # Trusted since PostgreSQL 13: the database owner may create it without superuser.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "clinicians",
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("licensed_states", postgresql.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("clinician_id"),
    )
    op.create_table(
        "weekly_availability",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_minute", sa.SmallInteger(), nullable=False),
        sa.Column("end_minute", sa.SmallInteger(), nullable=False),
        sa.CheckConstraint(
            "weekday BETWEEN 0 AND 6 AND start_minute >= 0 AND start_minute < end_minute AND end_minute <= 1440",
            name="ck_weekly_availability_window",
        ),
        sa.ForeignKeyConstraint(["clinician_id"], ["clinicians.clinician_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_weekly_availability_clinician_id"), "weekly_availability", ["clinician_id"], unique=False)
    op.create_table(
        "availability_exceptions",
        sa.Column("exception_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name="ck_availability_exceptions_period"),
        sa.ForeignKeyConstraint(["clinician_id"], ["clinicians.clinician_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("exception_id"),
    )
    op.create_index(
        op.f("ix_availability_exceptions_clinician_id"), "availability_exceptions", ["clinician_id"], unique=False
    )
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("state_of_residence", sa.String(length=2), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "plans",
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("planned_sessions", sa.Integer(), nullable=False),
        sa.Column("cadence_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("plan_id"),
    )
    op.create_index(op.f("ix_plans_patient_id"), "plans", ["patient_id"], unique=False)
    op.create_table(
        "appointments",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.String(length=64), nullable=False),
        sa.Column("appointment_type", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="booked", nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=True),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("course_session", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=64), nullable=True),
        sa.Column("rebooked_as", sa.Uuid(), nullable=True),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name="ck_appointments_period"),
        sa.ForeignKeyConstraint(["clinician_id"], ["clinicians.clinician_id"]),
        sa.PrimaryKeyConstraint("appointment_id"),
        postgresql.ExcludeConstraint(
            (sa.column("clinician_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at)"), "&&"),
            name="ex_appointments_no_double_booking",
            using="gist",
            where=sa.text("status <> 'cancelled'"),
        ),
        postgresql.ExcludeConstraint(
            (sa.column("patient_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at)"), "&&"),
            name="ex_appointments_patient_overlap",
            using="gist",
            where=sa.text("status <> 'cancelled'"),
        ),
    )
    op.create_index("ix_appointments_patient", "appointments", ["patient_id", "starts_at"], unique=False)
    op.create_index("ix_appointments_plan", "appointments", ["plan_id"], unique=False)
    op.create_index(
        "uq_appointments_review",
        "appointments",
        ["review_id"],
        unique=True,
        postgresql_where=sa.text("review_id IS NOT NULL AND status <> 'cancelled'"),
    )


def downgrade() -> None:
    op.drop_table("appointments")
    op.drop_table("plans")
    op.drop_table("patients")
    op.drop_table("availability_exceptions")
    op.drop_table("weekly_availability")
    op.drop_table("clinicians")
