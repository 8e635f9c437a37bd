"""The intake service's tables (its own database; no other service reads them).

Columns ending in `_enc` hold PHI encrypted field by field (see phi.py): a
copy of the database, a backup or a careless query shows no name, date of
birth, contact detail, member id or free text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from carecoord_shared.auth import audit_table
from carecoord_shared.auth.care import care_relations_table
from carecoord_shared.http.idempotency import idempotency_table
from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
audit = audit_table(metadata)
idempotency = idempotency_table(metadata)
# Who is in each patient's care (carecoord_shared.auth.care): what a licensed clinician needs to reach them.
care_relations = care_relations_table(metadata)

patients = Table(
    "patients",
    metadata,
    # The pseudonymous id every other service knows the patient by.
    Column("patient_id", Uuid, primary_key=True),
    # The patient app's account id: registration is idempotent on it.
    Column("external_id", String(128), nullable=False, unique=True),
    Column("state_of_residence", String(2), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("first_name_enc", Text, nullable=False),
    Column("last_name_enc", Text, nullable=False),
    Column("date_of_birth_enc", Text, nullable=False),
    Column("sex_enc", Text, nullable=False),
    Column("email_enc", Text, nullable=False),
    Column("phone_enc", Text, nullable=False),
    # The postal address as encrypted JSON (line1, line2, city, state, postal_code).
    Column("address_enc", Text, nullable=False),
)


def _patient_fk() -> Column[Any]:
    return Column("patient_id", Uuid, ForeignKey("patients.patient_id"), nullable=False, index=True)


assessments = Table(
    "assessments",
    metadata,
    Column("assessment_id", Uuid, primary_key=True),
    _patient_fk(),
    Column("instrument", String(8), nullable=False),
    Column("answers", ARRAY(Integer), nullable=False),
    Column("total", Integer, nullable=False),
    Column("severity_band", String(32), nullable=False),
    Column("item9_positive", Boolean),
    Column("provisional_ptsd", Boolean),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

medical_screenings = Table(
    "medical_screenings",
    metadata,
    Column("screening_id", Uuid, primary_key=True),
    _patient_fk(),
    # {question code: answered yes}
    Column("answers", JSONB, nullable=False),
    Column("exclusions", ARRAY(String(64)), nullable=False),
    Column("needs_review", ARRAY(String(64)), nullable=False),
    Column("notes_enc", Text),
    Column("rule_version", String(40), nullable=False),
    Column("submitted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

blood_pressure_readings = Table(
    "blood_pressure_readings",
    metadata,
    Column("reading_id", Uuid, primary_key=True),
    _patient_fk(),
    Column("systolic", Integer, nullable=False),
    Column("diastolic", Integer, nullable=False),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

coverages = Table(
    "coverages",
    metadata,
    Column("coverage_id", Uuid, primary_key=True),
    _patient_fk(),
    Column("kind", String(16), nullable=False),
    Column("payer_id", String(32)),
    Column("member_id_enc", Text),
    Column("plan", String(128)),
    Column("declared_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

eligibility_decisions = Table(
    "eligibility_decisions",
    metadata,
    Column("decision_id", Uuid, primary_key=True),
    _patient_fk(),
    Column("outcome", String(16), nullable=False),
    Column("reasons", ARRAY(String(64)), nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A clinician's decision (an override of a needs-review decision, or a re-evaluation): who,
    # which decision it supersedes, and why (free text).
    Column("overrides_decision_id", Uuid, ForeignKey("eligibility_decisions.decision_id")),
    Column("overridden_by", String(64)),
    Column("override_reason_enc", Text),
    # 1, 2, ... per patient: the highest is the decision in force (and consumers apply the highest they saw).
    Column("sequence", Integer, nullable=False),
    # What made it: rules (the automatic decision), clinician_override, clinician_re_evaluation.
    Column("basis", String(32), nullable=False),
    UniqueConstraint("patient_id", "sequence", name="uq_eligibility_decisions_sequence"),
)

# Every consent signed or withdrawn, appended, never updated: the latest row per document is the
# patient's standing consent to it (queries.consent_states). What was signed is the exact text of
# ``document_version`` (consents/). ``actor`` is the token's subject: the patient's id, or the
# clinician who recorded a withdrawal the patient made to them.
patient_consents = Table(
    "patient_consents",
    metadata,
    Column("consent_id", Uuid, primary_key=True),
    _patient_fk(),
    Column("document", String(32), nullable=False),
    Column("document_version", String(40), nullable=False),
    # signed | withdrawn
    Column("action", String(16), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor", String(64), nullable=False),
)
