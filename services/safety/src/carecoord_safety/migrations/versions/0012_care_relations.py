"""Safety learns each patient's care team and narrows clinicians' access to it (ADR 0015).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from carecoord_shared.auth.migrations import create_care_relations_v1, drop_care_relations_v1

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_care_relations_v1()


def downgrade() -> None:
    drop_care_relations_v1()
