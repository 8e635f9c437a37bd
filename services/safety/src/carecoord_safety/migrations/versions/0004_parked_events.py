"""Events held back behind one of the same patient's that failed (the consumer's parking).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import create_parked_events_v1, drop_parked_events_v1

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_parked_events_v1()


def downgrade() -> None:
    drop_parked_events_v1()
