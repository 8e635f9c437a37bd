"""Mood check-ins may carry GAD-7 answers: an anxiety plan's response is measured on GAD-7.

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
    op.add_column("mood_checkins", sa.Column("gad7_items", JSONB))
    op.add_column("mood_checkins", sa.Column("gad7_total", sa.Integer))


def downgrade() -> None:
    op.drop_column("mood_checkins", "gad7_total")
    op.drop_column("mood_checkins", "gad7_items")
