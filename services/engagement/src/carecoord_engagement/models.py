"""This service's tables (its own database; no other service reads them).

No contact details are stored here: a patient's email and phone are fetched from intake when a
message is sent, and forgotten (ADR 0017). What engagement keeps about a patient is what it needs to
decide: where they live (licences) and their time zone.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)

from carecoord_shared.auth import audit_table
from carecoord_shared.auth.care import care_relations_table
from carecoord_shared.http.idempotency import idempotency_table
from carecoord_shared.messaging.tables import messaging_tables

from .notify.tables import notify_tables

metadata = MetaData()
messaging = messaging_tables(metadata)
audit = audit_table(metadata)
idempotency = idempotency_table(metadata)
# The care team (CareTeamChanged) and reviews' assignees (ClinicianReviewAssigned): who owns a patient's task.
care_relations = care_relations_table(metadata)
# What is to be sent to whom (notifications), the staff directory, each patient's SMS consent (notify/tables.py).
notify = notify_tables(metadata)

# What engagement knows of a patient from intake.patients.
patients = Table(
    "patients",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("state_of_residence", String(2)),
    Column("time_zone", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Work a person must do about a patient. One task per cause (the event that made it) and kind: a
# redelivered or replayed event makes no second task. Every task ends closed with an outcome.
tasks = Table(
    "tasks",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("seq", BigInteger, Identity(), nullable=False, unique=True),
    Column("patient_id", Uuid, nullable=False),
    # call_patient | escalated_review | arrange_review | denied_claim (tasks.KINDS)
    Column("kind", String(32), nullable=False),
    Column("cause_event_id", Uuid, nullable=False),
    # What the task is about: the review (escalated_review, arrange_review), the claim (denied_claim) or
    # the dosing appointment whose check-in is missing (call_patient).
    Column("subject_id", Uuid, nullable=False),
    # Why, as a code (the review's basis, the denial's reason code, ...); never free text.
    Column("reason", String(64)),
    # The person who has it (a clinician's subject), or None: the queue of owner_role has it.
    Column("owner_id", String(128)),
    # clinician | operator | billing (billing staff call as a service)
    Column("owner_role", String(16), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("state", String(8), nullable=False, server_default="open"),
    Column("outcome", String(32)),
    Column("note", String(2000)),
    Column("closed_by", String(128)),
    Column("closed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "cause_event_id", name="uq_tasks_kind_cause"),
    CheckConstraint("state IN ('open', 'closed')", name="ck_tasks_state"),
    CheckConstraint("(state = 'open') = (outcome IS NULL)", name="ck_tasks_closed_with_outcome"),
    Index("ix_tasks_owner", "owner_id", "state", "due_at"),
    Index("ix_tasks_patient", "patient_id", "created_at"),
    Index("ix_tasks_subject", "subject_id", "state"),
    Index("ix_tasks_queue", "state", "due_at", "task_id"),
)
