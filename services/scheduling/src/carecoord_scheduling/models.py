"""This service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, ExcludeConstraint

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

clinicians = Table(
    "clinicians",
    metadata,
    Column("clinician_id", String(64), primary_key=True),
    Column("role", String(40), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("licensed_states", ARRAY(String(2)), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Recurring availability in the clinician's wall-clock time (see domain/availability.py).
weekly_availability = Table(
    "weekly_availability",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "clinician_id",
        String(64),
        ForeignKey("clinicians.clinician_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("weekday", SmallInteger, nullable=False),
    Column("start_minute", SmallInteger, nullable=False),
    Column("end_minute", SmallInteger, nullable=False),
    CheckConstraint(
        "weekday BETWEEN 0 AND 6 AND start_minute >= 0 AND start_minute < end_minute AND end_minute <= 1440",
        name="ck_weekly_availability_window",
    ),
)

# Time off: concrete UTC periods in which the clinician takes no appointment.
availability_exceptions = Table(
    "availability_exceptions",
    metadata,
    Column("exception_id", Uuid, primary_key=True),
    Column(
        "clinician_id",
        String(64),
        ForeignKey("clinicians.clinician_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(64), nullable=False),
    CheckConstraint("starts_at < ends_at", name="ck_availability_exceptions_period"),
)

# Where each patient lives and their zone, from intake's events: licensing and the patient's day depend on them.
patients = Table(
    "patients",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("state_of_residence", String(2), nullable=False),
    Column("time_zone", String(64), nullable=False),
    # The latest eligibility decision applied (intake's per-patient sequence; NULL before any, or from
    # a producer that sent none): an older decision arriving later is not applied over it.
    Column("eligibility_outcome", String(16)),
    Column("eligibility_sequence", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Scheduling's view of each treatment plan: what the course needs.
plans = Table(
    "plans",
    metadata,
    Column("plan_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False, index=True),
    Column("planned_sessions", Integer, nullable=False),
    Column("cadence_days", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

appointments = Table(
    "appointments",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("clinician_id", String(64), ForeignKey("clinicians.clinician_id"), nullable=False),
    Column("appointment_type", String(40), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("status", String(20), nullable=False, server_default="booked"),
    Column("plan_id", Uuid),
    Column("review_id", Uuid),
    # The priority of the review this appointment was booked for: it decides whether any hour may be used.
    Column("review_priority", String(16)),
    Column("course_session", Integer),
    Column("cancel_reason", String(64)),
    # A session cancelled by a hold points at the one that replaced it when the plan resumed.
    Column("rebooked_as", Uuid),
    Column("rule_version", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("starts_at < ends_at", name="ck_appointments_period"),
    Index("ix_appointments_patient", "patient_id", "starts_at"),
    Index("ix_appointments_plan", "plan_id"),
    # One urgent review appointment per review, whatever is redelivered or retried.
    Index(
        "uq_appointments_review",
        "review_id",
        unique=True,
        postgresql_where=text("review_id IS NOT NULL AND status <> 'cancelled'"),
    ),
)

# No double booking, enforced by the database even under concurrent requests:
# neither a clinician's nor a patient's live appointments may overlap in time
# (btree_gist provides "=" on text and uuid inside a GiST index).
for _who, _name in (
    (appointments.c.clinician_id, "ex_appointments_no_double_booking"),
    (appointments.c.patient_id, "ex_appointments_patient_overlap"),
):
    appointments.append_constraint(
        ExcludeConstraint(
            (_who, "="),
            (func.tstzrange(appointments.c.starts_at, appointments.c.ends_at), "&&"),
            name=_name,
            using="gist",
            where=text("status <> 'cancelled'"),
        )
    )
