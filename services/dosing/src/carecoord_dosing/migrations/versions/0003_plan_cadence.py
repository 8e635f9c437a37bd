"""A plan's cadence: days between dosing sessions (scheduling books the course by it).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("treatment_plans", sa.Column("cadence_days", sa.Integer(), server_default="7", nullable=False))


def downgrade() -> None:
    op.drop_column("treatment_plans", "cadence_days")
