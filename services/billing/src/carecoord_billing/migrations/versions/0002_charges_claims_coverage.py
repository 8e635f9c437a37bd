"""charges, claims, remittances, coverage and eligibility

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("state_of_residence", sa.String(length=2), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_table(
        "coverages",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("coverage_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("payer_id", sa.String(length=32), nullable=True),
        sa.Column("state_of_residence", sa.String(length=2), nullable=False),
        sa.Column("billable_to_payer", sa.Boolean(), nullable=False),
        sa.Column("verification_status", sa.String(length=20), server_default="unverified", nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("patient_id"),
        sa.UniqueConstraint("coverage_id"),
    )
    op.create_table(
        "eligibility_checks",
        sa.Column("verification_id", sa.Uuid(), nullable=False),
        sa.Column("trace_number", sa.String(length=50), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("coverage_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="queued", nullable=False),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.Column("interchange_control_number", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("verification_id"),
        sa.UniqueConstraint("trace_number"),
    )
    op.create_index(op.f("ix_eligibility_checks_patient_id"), "eligibility_checks", ["patient_id"], unique=False)
    op.create_table(
        "held_cancellations",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("appointment_id"),
    )
    op.create_table(
        "charges",
        sa.Column("charge_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_type", sa.String(length=40), nullable=False),
        sa.Column("service_date", sa.Date(), nullable=False),
        sa.Column("place_of_service", sa.String(length=2), nullable=False),
        sa.Column("modifiers", postgresql.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("self_pay", sa.Boolean(), nullable=True),
        sa.Column("payer_id", sa.String(length=32), nullable=True),
        sa.Column("fee_schedule_version", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("void_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("charge_id"),
        sa.UniqueConstraint("appointment_id", name="uq_charges_appointment"),
    )
    op.create_index(op.f("ix_charges_patient_id"), "charges", ["patient_id"], unique=False)
    op.create_table(
        "interchanges",
        sa.Column("control_number", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("transaction", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="building", nullable=False),
        sa.Column("file_name", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("control_number"),
    )
    op.create_table(
        "claims",
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("claim_number", sa.String(length=20), nullable=False),
        sa.Column("charge_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.String(length=32), nullable=False),
        sa.Column("interchange_control_number", sa.Integer(), nullable=False),
        sa.Column("total_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="building", nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("patient_responsibility_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("adjudicated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["charge_id"], ["charges.charge_id"]),
        sa.ForeignKeyConstraint(["interchange_control_number"], ["interchanges.control_number"]),
        sa.PrimaryKeyConstraint("claim_id"),
        sa.UniqueConstraint("claim_number"),
        sa.UniqueConstraint("charge_id", name="uq_claims_charge"),
    )
    op.create_index(op.f("ix_claims_patient_id"), "claims", ["patient_id"], unique=False)
    op.create_table(
        "remittances",
        sa.Column("remittance_id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("source_file_sha256", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.String(length=2), nullable=False),
        sa.Column("charge_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_cents", sa.BigInteger(), nullable=False),
        sa.Column("patient_responsibility_cents", sa.BigInteger(), nullable=False),
        sa.Column("adjustments", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payer_claim_number", sa.String(length=50), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.claim_id"]),
        sa.PrimaryKeyConstraint("remittance_id"),
        sa.UniqueConstraint("source_file_sha256", "position", name="uq_remittances_file_position"),
    )
    op.create_index(op.f("ix_remittances_claim_id"), "remittances", ["claim_id"], unique=False)
    op.create_table(
        "denials",
        sa.Column("denial_id", sa.Uuid(), nullable=False),
        sa.Column("claim_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("group_code", sa.String(length=2), nullable=False),
        sa.Column("reason_code", sa.String(length=5), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("denied_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["claim_id"], ["claims.claim_id"]),
        sa.PrimaryKeyConstraint("denial_id"),
        sa.UniqueConstraint("claim_id"),
    )
    op.create_index("ix_denials_queue", "denials", ["status", "reason_code", "denied_at"], unique=False)
    op.create_table(
        "inbound_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("transaction", sa.String(length=8), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )


def downgrade() -> None:
    op.drop_table("inbound_files")
    op.drop_index("ix_denials_queue", table_name="denials")
    op.drop_table("denials")
    op.drop_index(op.f("ix_remittances_claim_id"), table_name="remittances")
    op.drop_table("remittances")
    op.drop_index(op.f("ix_claims_patient_id"), table_name="claims")
    op.drop_table("claims")
    op.drop_table("interchanges")
    op.drop_index(op.f("ix_charges_patient_id"), table_name="charges")
    op.drop_table("charges")
    op.drop_table("held_cancellations")
    op.drop_index(op.f("ix_eligibility_checks_patient_id"), table_name="eligibility_checks")
    op.drop_table("eligibility_checks")
    op.drop_table("coverages")
    op.drop_table("patients")
