"""Notifications, the staff directory and patients' SMS consent (carecoord_engagement.notify).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from carecoord_engagement.notify.migration_steps import create_notify_v1, drop_notify_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_notify_v1()


def downgrade() -> None:
    drop_notify_v1()
