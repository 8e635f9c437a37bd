"""Migration steps for the audit log and the jurisdiction table; frozen once released
(see carecoord_shared.messaging.migrations for why)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# A trigger, not only a REVOKE: the service's role owns its tables (it runs the
# migrations), and an owner keeps every privilege a REVOKE could take away.
# Triggers fire for the owner too, so no statement the application sends can
# change or remove an audit row. What the owner could still do is drop the
# trigger (DDL); docs/security.md says how production takes DDL away from the
# application's role.
_APPEND_ONLY = (
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$
    """,
    "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log"
    " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC",
)


def create_audit_log_v1() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_patient", "audit_log", ["patient_id", "recorded_at"], unique=False)
    for statement in _APPEND_ONLY:
        op.execute(statement)


def drop_audit_log_v1() -> None:
    op.execute("DROP TABLE audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")


def create_patient_jurisdictions_v1() -> None:
    op.create_table(
        "patient_jurisdictions",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("state_of_residence", sa.String(length=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )


def drop_patient_jurisdictions_v1() -> None:
    op.drop_table("patient_jurisdictions")


def create_care_relations_v1() -> None:
    """The care relations a service learnt (carecoord_shared.auth.care.care_relations_table), and the audit
    row's ``basis``: why an allowed access was allowed (ADR 0015)."""
    op.create_table(
        "care_relations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("clinician_id", sa.String(length=128), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_care_relations_patient_clinician", "care_relations", ["patient_id", "clinician_id"])
    op.create_index("ix_care_relations_clinician", "care_relations", ["clinician_id", "patient_id"])
    op.create_index(
        "uq_care_relations_review",
        "care_relations",
        ["review_id"],
        unique=True,
        postgresql_where=sa.text("review_id IS NOT NULL"),
    )
    op.create_index(
        "uq_care_relations_team_role",
        "care_relations",
        ["patient_id", "relation"],
        unique=True,
        postgresql_where=sa.text("review_id IS NULL"),
    )
    op.add_column("audit_log", sa.Column("basis", sa.String(length=40), nullable=True))


def drop_care_relations_v1() -> None:
    op.drop_column("audit_log", "basis")
    op.drop_table("care_relations")
