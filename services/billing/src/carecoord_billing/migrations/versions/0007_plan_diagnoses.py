"""Diagnoses from the patients' treatment plans, and the codes each claim carries.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_diagnoses",
        sa.Column("plan_id", sa.Uuid(), primary_key=True),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("indication", sa.String(20), nullable=True),
        sa.Column("diagnosis_codes", JSONB, nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_plan_diagnoses_patient", "plan_diagnoses", ["patient_id", "planned_at"])
    op.add_column("claims", sa.Column("diagnosis_codes", JSONB, nullable=True))


def downgrade() -> None:
    op.drop_column("claims", "diagnosis_codes")
    op.drop_index("ix_plan_diagnoses_patient", table_name="plan_diagnoses")
    op.drop_table("plan_diagnoses")
