"""Eligibility decisions are numbered per patient and say what made them (rules, override, re-evaluation).

A clinician's re-evaluation supersedes the current decision; consumers apply
the decision with the highest sequence. Existing decisions are numbered in the
order they were made.

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
    op.add_column("eligibility_decisions", sa.Column("sequence", sa.Integer(), nullable=True))
    op.add_column("eligibility_decisions", sa.Column("basis", sa.String(length=32), nullable=True))
    op.execute(
        """
        UPDATE eligibility_decisions d SET sequence = n.seq,
               basis = CASE WHEN d.overridden_by IS NULL THEN 'rules' ELSE 'clinician_override' END
        FROM (SELECT decision_id, row_number() OVER (PARTITION BY patient_id ORDER BY decided_at, decision_id) AS seq
              FROM eligibility_decisions) n
        WHERE n.decision_id = d.decision_id
        """
    )
    op.alter_column("eligibility_decisions", "sequence", nullable=False)
    op.alter_column("eligibility_decisions", "basis", nullable=False)
    op.create_unique_constraint(
        "uq_eligibility_decisions_sequence", "eligibility_decisions", ["patient_id", "sequence"]
    )


def downgrade() -> None:
    op.drop_constraint("uq_eligibility_decisions_sequence", "eligibility_decisions", type_="unique")
    op.drop_column("eligibility_decisions", "basis")
    op.drop_column("eligibility_decisions", "sequence")
