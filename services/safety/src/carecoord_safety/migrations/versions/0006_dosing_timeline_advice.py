"""Post-dose timers run from the dose; advice and unknown symptom codes are kept with each decision.

dosing_sessions learns the session's authorisation (the dose), refusal and
no-show from dosing's and scheduling's events, which may arrive in either
order: a session may be known from its authorisation before it is booked, so
starts_at may be empty. side_effect_reports keeps the codes outside the rule
version's vocabulary; every observation keeps the advice its rules gave.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OBSERVATIONS = ("side_effect_reports", "vitals_readings", "mood_checkins")


def upgrade() -> None:
    op.alter_column("dosing_sessions", "starts_at", nullable=True)
    op.add_column("dosing_sessions", sa.Column("authorised_at", sa.DateTime(timezone=True)))
    op.add_column("dosing_sessions", sa.Column("authorisation_id", sa.Uuid))
    op.add_column("dosing_sessions", sa.Column("refused_at", sa.DateTime(timezone=True)))
    op.add_column("dosing_sessions", sa.Column("refusal_reason", sa.String(64)))
    op.add_column("dosing_sessions", sa.Column("no_show_at", sa.DateTime(timezone=True)))
    op.add_column(
        "side_effect_reports",
        sa.Column("unknown_symptoms", ARRAY(sa.String(64)), nullable=False, server_default=sa.text("'{}'")),
    )
    for table in OBSERVATIONS:
        op.add_column(table, sa.Column("advice", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")))


def downgrade() -> None:
    for table in OBSERVATIONS:
        op.drop_column(table, "advice")
    op.drop_column("side_effect_reports", "unknown_symptoms")
    for column in ("no_show_at", "refusal_reason", "refused_at", "authorisation_id", "authorised_at"):
        op.drop_column("dosing_sessions", column)
    op.execute("DELETE FROM dosing_sessions WHERE starts_at IS NULL")
    op.alter_column("dosing_sessions", "starts_at", nullable=False)
