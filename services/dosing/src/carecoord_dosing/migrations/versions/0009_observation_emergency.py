"""Observations remember whether safety advised emergency care on them: a session is not authorised
while one is recent, even before the hold it leads to has arrived on its own topic.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("safety_observations", sa.Column("emergency", sa.Boolean))


def downgrade() -> None:
    op.drop_column("safety_observations", "emergency")
