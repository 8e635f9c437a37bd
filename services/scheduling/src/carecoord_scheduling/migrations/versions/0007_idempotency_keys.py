"""The first outcome of each POST sent with an Idempotency-Key (carecoord_shared.http.idempotency).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import create_idempotency_keys_v1, drop_idempotency_keys_v1

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys_v1()


def downgrade() -> None:
    drop_idempotency_keys_v1()
