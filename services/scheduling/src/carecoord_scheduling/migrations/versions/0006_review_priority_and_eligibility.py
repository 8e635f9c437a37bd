"""Review appointments record the review's priority; patients record the latest eligibility decision applied.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("appointments", sa.Column("review_priority", sa.String(length=16), nullable=True))
    op.add_column("patients", sa.Column("eligibility_outcome", sa.String(length=16), nullable=True))
    op.add_column("patients", sa.Column("eligibility_sequence", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("patients", "eligibility_sequence")
    op.drop_column("patients", "eligibility_outcome")
    op.drop_column("appointments", "review_priority")
