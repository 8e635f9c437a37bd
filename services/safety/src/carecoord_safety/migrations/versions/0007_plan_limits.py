"""Safety's read model of each patient's treatment-plan limits and current dose (from dosing's events),
to refuse a review resolution whose dose change is outside them.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_limits",
        sa.Column("patient_id", sa.Uuid(), primary_key=True),
        sa.Column("plan_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("max_dose_mg", sa.Integer(), nullable=False),
        sa.Column("max_step_mg", sa.Integer(), nullable=False),
        sa.Column("current_dose_mg", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("plan_limits")
