"""The append-only audit log, and each patient's state of residence (clinicians' licences).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from carecoord_shared.auth.migrations import (
    create_audit_log_v1,
    create_patient_jurisdictions_v1,
    drop_audit_log_v1,
    drop_patient_jurisdictions_v1,
)

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_audit_log_v1()
    create_patient_jurisdictions_v1()


def downgrade() -> None:
    drop_patient_jurisdictions_v1()
    drop_audit_log_v1()
