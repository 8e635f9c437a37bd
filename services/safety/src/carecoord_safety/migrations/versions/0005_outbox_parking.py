"""The outbox's parked keys: the row the broker refused for good, and why.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import add_outbox_parking_v1, drop_outbox_parking_v1

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_parking_v1()


def downgrade() -> None:
    drop_outbox_parking_v1()
