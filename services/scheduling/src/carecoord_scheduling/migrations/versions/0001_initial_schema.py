"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 07:37:55.327844
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import (
    create_event_journal_v1,
    create_messaging_tables_v1,
    drop_event_journal_v1,
    drop_messaging_tables_v1,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables_v1()
    create_event_journal_v1()


def downgrade() -> None:
    drop_event_journal_v1()
    drop_messaging_tables_v1()
