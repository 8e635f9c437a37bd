"""intake: encrypted demographics, screening, blood pressure, coverage, eligibility decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:20:00

The PHI columns are NOT NULL: rows written by the walking skeleton (no
demographics) cannot be upgraded and must be discarded with `make clean`.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHI_COLUMNS = (
    "first_name_enc",
    "last_name_enc",
    "date_of_birth_enc",
    "sex_enc",
    "email_enc",
    "phone_enc",
    "address_enc",
)


def _patient_id() -> sa.Column[Any]:
    return sa.Column("patient_id", sa.Uuid(), sa.ForeignKey("patients.patient_id"), nullable=False)


def upgrade() -> None:
    for name in PHI_COLUMNS:
        op.add_column("patients", sa.Column(name, sa.Text(), nullable=False))

    op.create_table(
        "assessments",
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        _patient_id(),
        sa.Column("instrument", sa.String(length=8), nullable=False),
        sa.Column("answers", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("severity_band", sa.String(length=32), nullable=False),
        sa.Column("item9_positive", sa.Boolean(), nullable=True),
        sa.Column("provisional_ptsd", sa.Boolean(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("assessment_id"),
    )
    op.create_index("ix_assessments_patient_id", "assessments", ["patient_id"])

    op.create_table(
        "medical_screenings",
        sa.Column("screening_id", sa.Uuid(), nullable=False),
        _patient_id(),
        sa.Column("answers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("exclusions", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("needs_review", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("notes_enc", sa.Text(), nullable=True),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("screening_id"),
    )
    op.create_index("ix_medical_screenings_patient_id", "medical_screenings", ["patient_id"])

    op.create_table(
        "blood_pressure_readings",
        sa.Column("reading_id", sa.Uuid(), nullable=False),
        _patient_id(),
        sa.Column("systolic", sa.Integer(), nullable=False),
        sa.Column("diastolic", sa.Integer(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("reading_id"),
    )
    op.create_index("ix_blood_pressure_readings_patient_id", "blood_pressure_readings", ["patient_id"])

    op.create_table(
        "coverages",
        sa.Column("coverage_id", sa.Uuid(), nullable=False),
        _patient_id(),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("payer_id", sa.String(length=32), nullable=True),
        sa.Column("member_id_enc", sa.Text(), nullable=True),
        sa.Column("plan", sa.String(length=128), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("coverage_id"),
    )
    op.create_index("ix_coverages_patient_id", "coverages", ["patient_id"])

    op.create_table(
        "eligibility_decisions",
        sa.Column("decision_id", sa.Uuid(), nullable=False),
        _patient_id(),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("rule_version", sa.String(length=40), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column(
            "overrides_decision_id", sa.Uuid(), sa.ForeignKey("eligibility_decisions.decision_id"), nullable=True
        ),
        sa.Column("overridden_by", sa.String(length=64), nullable=True),
        sa.Column("override_reason_enc", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("decision_id"),
    )
    op.create_index("ix_eligibility_decisions_patient_id", "eligibility_decisions", ["patient_id"])


def downgrade() -> None:
    for table in ("eligibility_decisions", "coverages", "blood_pressure_readings", "medical_screenings", "assessments"):
        op.drop_index(f"ix_{table}_patient_id", table_name=table)
        op.drop_table(table)
    for name in reversed(PHI_COLUMNS):
        op.drop_column("patients", name)
