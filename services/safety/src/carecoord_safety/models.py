"""The safety service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from typing import Any

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
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from carecoord_shared.auth import audit_table, jurisdiction_table
from carecoord_shared.auth.care import care_relations_table
from carecoord_shared.http.idempotency import idempotency_table
from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
audit = audit_table(metadata)
idempotency = idempotency_table(metadata)
jurisdictions = jurisdiction_table(metadata)
# The care team, learnt from scheduling's CareTeamChanged (this service knows its own reviews' assignees).
care_relations = care_relations_table(metadata)


def _assessment_columns() -> list[Column[Any]]:
    """What the rules decided about an observation, and under which version."""
    return [
        Column("rule_version", String(40), nullable=False),
        Column("fired", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        Column("triggers", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
        # Coded guidance for the patient (e.g. seek_emergency_care), returned again on a resubmission.
        Column("advice", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    ]


side_effect_reports = Table(
    "side_effect_reports",
    metadata,
    Column("report_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("symptoms", ARRAY(String(64)), nullable=False),
    Column("grade", Integer, nullable=False),
    Column("onset_minutes_after_dose", Integer),
    # Free text the patient typed: kept here only, never in events, logs or spans.
    Column("note", Text),
    Column("source", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("escalated", Boolean, nullable=False),
    # Codes outside the rule version's symptom vocabulary: flagged for a clinician.
    Column("unknown_symptoms", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
    *_assessment_columns(),
)

vitals_readings = Table(
    "vitals_readings",
    metadata,
    Column("reading_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("systolic", Integer, nullable=False),
    Column("diastolic", Integer, nullable=False),
    Column("heart_rate", Integer),
    Column("measured_at", DateTime(timezone=True), nullable=False),
    Column("context", String(20), nullable=False),
    Column("appointment_id", Uuid),
    Column("source", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("out_of_limits", Boolean, nullable=False),
    *_assessment_columns(),
)

mood_checkins = Table(
    "mood_checkins",
    metadata,
    Column("checkin_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("phq9_items", JSONB),
    Column("pcl5_items", JSONB),
    Column("gad7_items", JSONB),
    Column("phq9_total", Integer),
    Column("phq9_item9", Integer),
    Column("pcl5_total", Integer),
    Column("gad7_total", Integer),
    Column("answered_at", DateTime(timezone=True), nullable=False),
    Column("appointment_id", Uuid),
    Column("source", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    *_assessment_columns(),
)

clinician_reviews = Table(
    "clinician_reviews",
    metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("priority", String(20), nullable=False),
    # urgent 3, high 2, routine 1: the worklist sorts on it.
    Column("priority_rank", Integer, nullable=False, server_default="1"),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("triggers", JSONB, nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(64)),
    Column("overdue_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(64)),
    Column("decision", String(40)),
    # The clinician's note: free text, kept here only.
    Column("resolution_note", Text),
    # Raised by a trigger on every update (migration add_row_version_v1): the ETag decisions send back in If-Match.
    Column("version", Integer, nullable=False, server_default="1"),
    # Who must act now and why (assignment.py): the prescriber, on-call, the clinical lead, or by hand.
    Column("assignee_id", String(64)),
    Column("assignment_basis", String(20)),
    # 0 when opened; 1 once paged to on-call at its due time; 2 once paged to the clinical lead.
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("assigned_at", DateTime(timezone=True)),
    # One open review per patient and reason: a further trigger attaches to it.
    Index(
        "uq_clinician_reviews_open_per_reason",
        "patient_id",
        "reason",
        unique=True,
        postgresql_where=text("status <> 'resolved'"),
    ),
    Index("ix_clinician_reviews_worklist", "status", "priority_rank", "due_at"),
    # "My reviews": a clinician's unresolved assignments.
    Index("ix_clinician_reviews_assignee", "assignee_id", postgresql_where=text("status <> 'resolved'")),
)

# The on-call rota: per state, who is on call (paged when a review goes overdue, or when the prescriber is
# away) and who is the clinical lead (paged if on-call does not acknowledge), shift by shift. Staff ids only.
on_call_shifts = Table(
    "on_call_shifts",
    metadata,
    Column("shift_id", Uuid, primary_key=True),
    Column("state", String(2), nullable=False),
    Column("role", String(20), nullable=False),
    Column("clinician_id", String(64), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancelled_at", DateTime(timezone=True)),
    Index("ix_on_call_shifts_cover", "state", "role", "starts_at"),
)

# When a clinician is away (leave, out of office): a review is not given to a prescriber away until it is due.
clinician_absences = Table(
    "clinician_absences",
    metadata,
    Column("absence_id", Uuid, primary_key=True),
    Column("clinician_id", String(64), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("cancelled_at", DateTime(timezone=True)),
    Index("ix_clinician_absences_clinician", "clinician_id", "starts_at"),
)

review_triggers = Table(
    "review_triggers",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("review_id", Uuid, ForeignKey("clinician_reviews.review_id"), nullable=False, index=True),
    Column("source_kind", String(20), nullable=False),
    Column("source_id", Uuid, nullable=False),
    Column("rule_ids", JSONB, nullable=False),
    Column("triggers", JSONB, nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

treatment_holds = Table(
    "treatment_holds",
    metadata,
    Column("hold_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("review_id", Uuid, nullable=False, index=True),
    Column("reason", String(64), nullable=False),
    Column("status", String(20), nullable=False, server_default="requested"),
    Column("requested_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
)

# Safety's own view of dosing sessions, for the post-dose check-in timers: what
# scheduling says (booked start, cancelled, no-show) and what dosing says (the
# authorisation, i.e. the dose; a refusal), merged whatever order they arrive in.
dosing_sessions = Table(
    "dosing_sessions",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    # Empty while only dosing's authorisation has arrived.
    Column("starts_at", DateTime(timezone=True)),
    # booked | cancelled | no_show (scheduling), or unbooked: not heard from scheduling yet.
    Column("status", String(20), nullable=False),
    # The earliest post-dose check-in (answered/measured at or after the dose).
    Column("checked_in_at", DateTime(timezone=True)),
    # When dosing authorised the session (its event's occurred_at): the post-dose timers run from here.
    Column("authorised_at", DateTime(timezone=True)),
    Column("authorisation_id", Uuid),
    Column("refused_at", DateTime(timezone=True)),
    Column("refusal_reason", String(64)),
    Column("no_show_at", DateTime(timezone=True)),
)

# Safety's read model of each patient's latest treatment plan, from dosing's events
# (TreatmentPlanCreated: the limits; DoseApproved: the current dose; the status
# events): lets a review resolved with a dose change be refused at once (422)
# when the dose is outside the plan's limits. Dosing re-validates (its own data
# is the source of truth) and says DoseChangeRefused if it disagrees.
plan_limits = Table(
    "plan_limits",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("plan_id", Uuid, nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("max_dose_mg", Integer, nullable=False),
    Column("max_step_mg", Integer, nullable=False),
    Column("current_dose_mg", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Durable timers: kept in the database so they survive restarts; fired and
# marked in one transaction with their effects, so each fires exactly once.
timers = Table(
    "timers",
    metadata,
    Column("timer_id", Uuid, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("subject_id", Uuid, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("fired_at", DateTime(timezone=True)),
    Column("cancelled_at", DateTime(timezone=True)),
    UniqueConstraint("kind", "subject_id", name="uq_timers_kind_subject"),
    Index("ix_timers_pending", "due_at", postgresql_where=text("fired_at IS NULL AND cancelled_at IS NULL")),
)
