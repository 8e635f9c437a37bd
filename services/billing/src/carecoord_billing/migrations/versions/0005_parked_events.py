"""Events held back behind one of the same patient's that failed (the consumer's parking).

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import create_parked_events_v1, drop_parked_events_v1

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_parked_events_v1()


def downgrade() -> None:
    drop_parked_events_v1()
