"""The dosing service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from carecoord_shared.auth import audit_table, jurisdiction_table
from carecoord_shared.auth.care import care_relations_table
from carecoord_shared.http.idempotency import idempotency_table
from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
audit = audit_table(metadata)
idempotency = idempotency_table(metadata)
# Who is in each patient's care (carecoord_shared.auth.care): what a licensed clinician needs to reach them.
care_relations = care_relations_table(metadata)
jurisdictions = jurisdiction_table(metadata)

treatment_plans = Table(
    "treatment_plans",
    metadata,
    Column("plan_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("status", String(20), nullable=False),
    Column("starting_dose_mg", Integer, nullable=False),
    Column("max_dose_mg", Integer, nullable=False),
    Column("max_step_mg", Integer, nullable=False),
    Column("planned_sessions", Integer, nullable=False),
    # Days between dosing sessions; scheduling books the course at this cadence.
    Column("cadence_days", Integer, nullable=False, server_default="7"),
    # The dose a clinician approved for the next session; none means no session may go ahead.
    Column("approved_dose_mg", Integer),
    Column("sessions_completed", Integer, nullable=False, server_default="0"),
    # What the plan treats (Indication) and the clinician's ICD-10-CM codes, principal
    # first, without the dot; null on plans written before they were recorded.
    Column("indication", String(20)),
    Column("diagnosis_codes", JSONB),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Raised by a trigger on every update (migration add_row_version_v1): the ETag decisions send back in If-Match.
    Column("version", Integer, nullable=False, server_default="1"),
    # One live plan per patient: a second draft while one is running is a mistake.
    Index(
        "uq_treatment_plans_live_per_patient",
        "patient_id",
        unique=True,
        postgresql_where=text("status IN ('draft', 'active', 'paused')"),
    ),
)

plan_transitions = Table(
    "plan_transitions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("plan_id", Uuid, ForeignKey("treatment_plans.plan_id"), nullable=False, index=True),
    Column("from_status", String(20), nullable=False),
    Column("to_status", String(20), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

treatment_holds = Table(
    "treatment_holds",
    metadata,
    Column("hold_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    # The review whose resolution releases it; none on a hold dosing opened itself (consent withdrawn:
    # released when the patient signs again, see plans.consent_signed).
    Column("review_id", Uuid),
    Column("reason", String(64), nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    Column("release_decision", String(40)),
    Column("dose_change_refused", String(64)),  # why a review's dose change was refused; the hold stays open
)

dose_proposals = Table(
    "dose_proposals",
    metadata,
    Column("proposal_id", Uuid, primary_key=True),
    Column("plan_id", Uuid, ForeignKey("treatment_plans.plan_id"), nullable=False, index=True),
    Column("session_number", Integer, nullable=False),
    Column("previous_dose_mg", Integer, nullable=False),
    Column("proposed_dose_mg", Integer, nullable=False),
    Column("rationale", JSONB, nullable=False),
    Column("rule_version", String(40), nullable=False),
    # proposed -> approved | superseded (a newer proposal replaced it)
    Column("status", String(20), nullable=False, server_default="proposed"),
    Column("proposed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("approved_dose_mg", Integer),
    Column("approved_by", String(64)),
    Column("approved_at", DateTime(timezone=True)),
)

session_authorisations = Table(
    "session_authorisations",
    metadata,
    Column("authorisation_id", Uuid, primary_key=True),
    Column("plan_id", Uuid, ForeignKey("treatment_plans.plan_id"), nullable=False),
    # One authorisation per dosing session, however often it is requested.
    Column("appointment_id", Uuid, nullable=False, unique=True),
    Column("dose_mg", Integer, nullable=False),
    Column("authorised_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

session_refusals = Table(
    "session_refusals",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("appointment_id", Uuid, nullable=False, index=True),
    Column("patient_id", Uuid, nullable=False),
    Column("plan_id", Uuid),
    Column("reason", String(64), nullable=False),
    Column("refused_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Dosing's own view of what safety recorded: the facts titration and
# authorisation depend on (coded facts only, no free text).
safety_observations = Table(
    "safety_observations",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("grade", Integer),
    Column("symptoms", JSONB),
    Column("context", String(20)),
    Column("within_limits", Boolean),
    Column("phq9_total", Integer),
    Column("appointment_id", Uuid),  # the session a reading was taken for
    Column("emergency", Boolean),  # safety advised emergency care (seek_emergency_care) on it
    Column("pcl5_total", Integer),
    Column("gad7_total", Integer),
    Index("ix_safety_observations_patient", "patient_id", "kind", "observed_at"),
    Index("ix_safety_observations_appointment", "appointment_id", "observed_at"),
)

# Intake's scores (AssessmentScored on intake.screening): the baselines titration
# measures response against. Totals only; ``scored_at`` is when intake scored it.
intake_assessments = Table(
    "intake_assessments",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("instrument", String(10), nullable=False),
    Column("total", Integer, nullable=False),
    Column("scored_at", DateTime(timezone=True), nullable=False),
    Index("ix_intake_assessments_patient", "patient_id", "instrument", "scored_at"),
)

# Completed dosing sessions (AppointmentCompleted, dosing_session): when each started; the
# earliest is the patient's first dose, day 0 of their outcomes.
completed_sessions = Table(
    "completed_sessions",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("plan_id", Uuid),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Index("ix_completed_sessions_patient", "patient_id", "started_at"),
)

# Outcome milestones already announced (TreatmentResponseReached, RemissionReached): one row,
# and so one event, per patient, instrument, milestone and definition version.
outcome_milestones = Table(
    "outcome_milestones",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("instrument", String(10), primary_key=True),
    Column("milestone", String(20), primary_key=True),
    Column("definition_version", String(40), primary_key=True),
    Column("reached_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The patient's informed consent to ketamine treatment as intake announced it (ConsentSigned /
# ConsentWithdrawn of ``ketamine_treatment``): one row per patient, the latest act. No session is
# authorised without a signature standing (signed_at set, withdrawn_at not after it). ``as_of`` is the
# time of the act applied, so an older act arriving late never overrides a newer one.
treatment_consents = Table(
    "treatment_consents",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("document_version", String(40), nullable=False),
    Column("signed_at", DateTime(timezone=True)),
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("as_of", DateTime(timezone=True), nullable=False),
)
