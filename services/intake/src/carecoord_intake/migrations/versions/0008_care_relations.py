"""Intake learns each patient's care relations and narrows clinicians' access to them (ADR 0015).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from carecoord_shared.auth.migrations import create_care_relations_v1, drop_care_relations_v1

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_care_relations_v1()


def downgrade() -> None:
    drop_care_relations_v1()
