"""Consents signed and withdrawn (patient_consents): one appended row per act.

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
    op.create_table(
        "patient_consents",
        sa.Column("consent_id", sa.Uuid(), primary_key=True),
        sa.Column("patient_id", sa.Uuid(), sa.ForeignKey("patients.patient_id"), nullable=False),
        sa.Column("document", sa.String(32), nullable=False),
        sa.Column("document_version", sa.String(40), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
    )
    op.create_index("ix_patient_consents_patient_id", "patient_consents", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_patient_consents_patient_id", table_name="patient_consents")
    op.drop_table("patient_consents")
