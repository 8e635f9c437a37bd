"""The dosing service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
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

from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)

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
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Column("review_id", Uuid, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("status", String(20), nullable=False, server_default="open"),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    Column("release_decision", String(40)),
)
