"""A version on each plan, raised by a trigger on every update: its ETag, for If-Match on decisions
(carecoord_shared.http.preconditions).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from carecoord_shared.messaging.migrations import add_row_version_v1, drop_row_version_v1

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_row_version_v1("treatment_plans")


def downgrade() -> None:
    drop_row_version_v1("treatment_plans")
