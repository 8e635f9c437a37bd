"""A pre-dose reading names its session (the appointment it was taken for), and a hold
records why a review's dose change was refused while it stays open.

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
    op.add_column("safety_observations", sa.Column("appointment_id", sa.Uuid(), nullable=True))
    op.create_index("ix_safety_observations_appointment", "safety_observations", ["appointment_id", "observed_at"])
    op.add_column("treatment_holds", sa.Column("dose_change_refused", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("treatment_holds", "dose_change_refused")
    op.drop_index("ix_safety_observations_appointment", table_name="safety_observations")
    op.drop_column("safety_observations", "appointment_id")
