"""This service's tables (its own database; no other service reads them).

No PHI is stored here: names, dates of birth, addresses and member ids are
fetched from intake when a file to a payer is written, and only go into that
file. Money is integer cents (BIGINT), never float.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from carecoord_shared.auth import audit_table
from carecoord_shared.auth.care import care_relations_table
from carecoord_shared.http.idempotency import idempotency_table
from carecoord_shared.messaging.journal import journal_table
from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
audit = audit_table(metadata)
idempotency = idempotency_table(metadata)
# Who is in each patient's care (carecoord_shared.auth.care): what a licensed clinician needs to reach them.
care_relations = care_relations_table(metadata)
journal = journal_table(metadata)

# What billing knows of a patient from intake.patients: where they live (which
# decides whether insurance is accepted) and their time zone (the service date).
patients = Table(
    "patients",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("state_of_residence", String(2)),
    Column("time_zone", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The diagnoses clinicians recorded in the patient's treatment plans (TreatmentPlanCreated
# on dosing.plans): a claim carries the codes of the patient's latest plan. Codes only.
plan_diagnoses = Table(
    "plan_diagnoses",
    metadata,
    Column("plan_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("indication", String(20)),
    Column("diagnosis_codes", JSONB, nullable=False),
    # When dosing wrote the plan (the event's occurred_at): "latest" is by this, not by arrival.
    Column("planned_at", DateTime(timezone=True), nullable=False),
    Index("ix_plan_diagnoses_patient", "patient_id", "planned_at"),
)

# The patient's latest coverage declaration; one row per patient.
coverages = Table(
    "coverages",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("coverage_id", Uuid, nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("payer_id", String(32)),
    Column("state_of_residence", String(2), nullable=False),
    # Insurance declared in a state where the practice takes insurance.
    Column("billable_to_payer", Boolean, nullable=False),
    # unverified | active | inactive | unknown (from the payer's 271)
    Column("verification_status", String(20), nullable=False, server_default="unverified"),
    Column("declared_at", DateTime(timezone=True), nullable=False),
    Column("verified_at", DateTime(timezone=True)),
)

# One 270 inquiry; the trace number (TRN02) is how the payer's 271 finds it again.
eligibility_checks = Table(
    "eligibility_checks",
    metadata,
    Column("verification_id", Uuid, primary_key=True),
    Column("trace_number", String(50), nullable=False, unique=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("coverage_id", Uuid, nullable=False),
    Column("payer_id", String(32), nullable=False),
    # queued | sent | answered
    Column("status", String(20), nullable=False, server_default="queued"),
    Column("result", String(20)),
    Column("interchange_control_number", Integer),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("answered_at", DateTime(timezone=True)),
)

# Appointments cancelled by a treatment hold: never charged, even if a completion arrives out of order.
held_cancellations = Table(
    "held_cancellations",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Self-pay invoices: one per visit, or one per course package covering several sessions.
invoices = Table(
    "invoices",
    metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    # visit | package
    Column("kind", String(20), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False, server_default="0"),
    # open -> paid; open -> void (its only charge voided before any payment)
    Column("status", String(20), nullable=False, server_default="open"),
    # Package only: dosing sessions it covers and how many have been used.
    Column("sessions_included", Integer),
    Column("sessions_used", Integer, nullable=False, server_default="0"),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("due_on", Date, nullable=False),
)

# Payments against invoices; the client's payment id makes a retried request a no-op.
payments = Table(
    "payments",
    metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("invoice_id", Uuid, ForeignKey("invoices.invoice_id"), nullable=False, index=True),
    Column("amount_cents", BigInteger, nullable=False),
    Column("method", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

charges = Table(
    "charges",
    metadata,
    Column("charge_id", Uuid, primary_key=True),
    Column("appointment_id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("appointment_type", String(40), nullable=False),
    Column("service_date", Date, nullable=False),
    Column("place_of_service", String(2), nullable=False),
    Column("modifiers", ARRAY(String(2)), nullable=False),
    # [{"cpt": "99214", "cents": 22000}, ...] in billing order
    Column("lines", JSONB, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    # None while the patient's coverage is not yet known (status awaiting_coverage).
    Column("self_pay", Boolean),
    Column("payer_id", String(32)),
    Column("fee_schedule_version", String(40), nullable=False),
    # Self-pay: the invoice (per visit, or the course package) this charge is billed on.
    Column("invoice_id", Uuid, ForeignKey("invoices.invoice_id")),
    # awaiting_coverage -> open -> claimed | invoiced; any of these but claimed -> voided
    Column("status", String(20), nullable=False, server_default="open"),
    Column("void_reason", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("voided_at", DateTime(timezone=True)),
    # The invariant itself, not only the inbox: one charge per appointment whatever is redelivered.
    UniqueConstraint("appointment_id", name="uq_charges_appointment"),
)

# Every X12 interchange we send; the serial is the ISA13/GS06 control number.
interchanges = Table(
    "interchanges",
    metadata,
    Column("control_number", Integer, primary_key=True, autoincrement=True),
    # 837P | 270
    Column("transaction", String(8), nullable=False),
    # building -> sent
    Column("status", String(20), nullable=False, server_default="building"),
    Column("file_name", String(120)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
)

claims = Table(
    "claims",
    metadata,
    Column("claim_id", Uuid, primary_key=True),
    # CLM01, echoed by the payer in CLP01.
    Column("claim_number", String(20), nullable=False, unique=True),
    Column("charge_id", Uuid, ForeignKey("charges.charge_id"), nullable=False),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("payer_id", String(32), nullable=False),
    Column("interchange_control_number", Integer, ForeignKey("interchanges.control_number"), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    # The ICD-10-CM codes (no dot, principal first) the claim carries, fixed when the
    # claim is made so that a file written again says the same; from the patient's plan.
    Column("diagnosis_codes", JSONB),
    # building -> submitted -> paid | partially_paid | denied | reversed
    Column("status", String(20), nullable=False, server_default="building"),
    Column("paid_cents", BigInteger, nullable=False, server_default="0"),
    Column("patient_responsibility_cents", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("submitted_at", DateTime(timezone=True)),
    Column("adjudicated_at", DateTime(timezone=True)),
    # One claim line per charge, so one per appointment.
    UniqueConstraint("charge_id", name="uq_claims_charge"),
)

# One CLP loop of an 835 as posted; (file, position) makes re-reading a file a no-op.
remittances = Table(
    "remittances",
    metadata,
    Column("remittance_id", Uuid, primary_key=True),
    Column("claim_id", Uuid, ForeignKey("claims.claim_id"), nullable=False, index=True),
    Column("source_file_sha256", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status_code", String(2), nullable=False),
    Column("charge_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("patient_responsibility_cents", BigInteger, nullable=False),
    Column("adjustments", JSONB, nullable=False),
    Column("payer_claim_number", String(50)),
    Column("posted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("source_file_sha256", "position", name="uq_remittances_file_position"),
)

# The denial work queue: what a biller has to look at, worked in reason-code order.
denials = Table(
    "denials",
    metadata,
    Column("denial_id", Uuid, primary_key=True),
    Column("claim_id", Uuid, ForeignKey("claims.claim_id"), nullable=False, unique=True),
    Column("patient_id", Uuid, nullable=False),
    Column("group_code", String(2), nullable=False),
    Column("reason_code", String(5), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    # open | worked
    Column("status", String(20), nullable=False, server_default="open"),
    Column("denied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_denials_queue", "status", "reason_code", "denied_at"),
)

# Files read from the clearinghouse's inbound folder, by content hash: a file
# seen again (a crash between commit and archive) is archived, not re-posted.
inbound_files = Table(
    "inbound_files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("file_name", String(255), nullable=False),
    Column("transaction", String(8), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
