"""The intake service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, func

from carecoord_shared.messaging.tables import messaging_tables

metadata = MetaData()
messaging = messaging_tables(metadata)

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
)
