"""The safety service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text, Uuid, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)

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
    Column("rule_id", String(64)),
    Column("rule_version", String(40), nullable=False),
    Column("review_id", Uuid),
)

clinician_reviews = Table(
    "clinician_reviews",
    metadata,
    Column("review_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("priority", String(20), nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("triggers", JSONB, nullable=False),
    Column("rule_version", String(40), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolved_by", String(64)),
    Column("decision", String(40)),
    # One open review per patient and reason: a further trigger attaches to it.
    Index(
        "uq_clinician_reviews_open_per_reason",
        "patient_id",
        "reason",
        unique=True,
        postgresql_where=text("status <> 'resolved'"),
    ),
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
