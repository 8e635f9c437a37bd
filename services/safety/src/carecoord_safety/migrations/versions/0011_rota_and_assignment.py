"""Reviews are assigned (and escalated) to a person; the on-call rota per state and clinicians' absences.

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


def _staff_period_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    ]


def upgrade() -> None:
    op.add_column("clinician_reviews", sa.Column("assignee_id", sa.String(64)))
    op.add_column("clinician_reviews", sa.Column("assignment_basis", sa.String(20)))
    op.add_column("clinician_reviews", sa.Column("escalation_level", sa.Integer, nullable=False, server_default="0"))
    op.add_column("clinician_reviews", sa.Column("assigned_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_clinician_reviews_assignee",
        "clinician_reviews",
        ["assignee_id"],
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_table(
        "on_call_shifts",
        sa.Column("shift_id", sa.Uuid, primary_key=True),
        sa.Column("state", sa.String(2), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("clinician_id", sa.String(64), nullable=False),
        *_staff_period_columns(),
    )
    op.create_index("ix_on_call_shifts_cover", "on_call_shifts", ["state", "role", "starts_at"])
    op.create_table(
        "clinician_absences",
        sa.Column("absence_id", sa.Uuid, primary_key=True),
        sa.Column("clinician_id", sa.String(64), nullable=False),
        *_staff_period_columns(),
    )
    op.create_index("ix_clinician_absences_clinician", "clinician_absences", ["clinician_id", "starts_at"])


def downgrade() -> None:
    op.drop_table("clinician_absences")
    op.drop_table("on_call_shifts")
    op.drop_index("ix_clinician_reviews_assignee", table_name="clinician_reviews")
    for column in ("assigned_at", "escalation_level", "assignment_basis", "assignee_id"):
        op.drop_column("clinician_reviews", column)
