"""A plan's indication and diagnosis codes; intake baselines and PCL-5/GAD-7 check-in totals for titration.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("treatment_plans", sa.Column("indication", sa.String(20), nullable=True))
    op.add_column("treatment_plans", sa.Column("diagnosis_codes", JSONB, nullable=True))
    op.add_column("safety_observations", sa.Column("pcl5_total", sa.Integer(), nullable=True))
    op.add_column("safety_observations", sa.Column("gad7_total", sa.Integer(), nullable=True))
    op.create_table(
        "intake_assessments",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("instrument", sa.String(10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_intake_assessments_patient", "intake_assessments", ["patient_id", "instrument", "scored_at"])


def downgrade() -> None:
    op.drop_index("ix_intake_assessments_patient", table_name="intake_assessments")
    op.drop_table("intake_assessments")
    op.drop_column("safety_observations", "gad7_total")
    op.drop_column("safety_observations", "pcl5_total")
    op.drop_column("treatment_plans", "diagnosis_codes")
    op.drop_column("treatment_plans", "indication")
