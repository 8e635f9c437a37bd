"""Outcomes: the starts of completed dosing sessions (the first dose) and the outcome milestones emitted.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "completed_sessions",
        sa.Column("appointment_id", sa.Uuid(), primary_key=True),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_completed_sessions_patient", "completed_sessions", ["patient_id", "started_at"])
    op.create_table(
        "outcome_milestones",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("instrument", sa.String(10), nullable=False),
        sa.Column("milestone", sa.String(20), nullable=False),
        sa.Column("definition_version", sa.String(40), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("patient_id", "instrument", "milestone", "definition_version"),
    )


def downgrade() -> None:
    op.drop_table("outcome_milestones")
    op.drop_index("ix_completed_sessions_patient", table_name="completed_sessions")
    op.drop_table("completed_sessions")
