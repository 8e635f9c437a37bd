"""The audit log and the patients' jurisdictions, added to each service's own metadata."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, String, Table, Uuid, func


def audit_table(metadata: MetaData) -> Table:
    """Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE (``create_audit_log_v1``)."""
    return Table(
        "audit_log",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # Who: the token's subject (an opaque id) and role.
        Column("actor", String(128), nullable=False),
        Column("actor_role", String(16), nullable=False),
        # What: e.g. "read" of "plan" 7f3c..., or "resolve" of "review" ...
        Column("action", String(64), nullable=False),
        Column("resource", String(64), nullable=False),
        Column("resource_id", String(64)),
        Column("patient_id", Uuid),
        Column("outcome", String(16), nullable=False),
        Column("trace_id", String(32)),
        # Why an allowed access was allowed: care_team:prescriber, on_call, assigned:on_call, self, service...
        Column("basis", String(40)),
        Index("ix_audit_log_patient", "patient_id", "recorded_at"),
    )


def jurisdiction_table(metadata: MetaData) -> Table:
    """Each patient's state of residence, learnt from intake's PatientRegistered:
    the one fact a service needs to tell whether a clinician is licensed for the patient."""
    return Table(
        "patient_jurisdictions",
        metadata,
        Column("patient_id", Uuid, primary_key=True),
        Column("state_of_residence", String(2), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
