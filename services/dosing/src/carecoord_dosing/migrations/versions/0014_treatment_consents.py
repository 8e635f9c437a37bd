"""Treatment consent as intake announces it (treatment_consents), and holds without a review: the
hold a withdrawn consent opens is dosing's own, released when the patient signs again.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "treatment_consents",
        sa.Column("patient_id", sa.Uuid(), primary_key=True),
        sa.Column("document_version", sa.String(40), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )
    op.alter_column("treatment_holds", "review_id", existing_type=sa.Uuid(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM treatment_holds WHERE review_id IS NULL")
    op.alter_column("treatment_holds", "review_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_table("treatment_consents")
