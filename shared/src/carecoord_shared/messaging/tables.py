"""The outbox and inbox tables, added to each service's own metadata.

Every service owns its database, so each gets its own copy of these tables
(created by the service's first migration).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    inbox: Table
    # Events of a patient held back behind one of theirs that failed (the consumer's parking).
    parked: Table


def messaging_tables(metadata: MetaData) -> MessagingTables:
    outbox = Table(
        "outbox",
        metadata,
        # The identity orders rows: the relay publishes in this order, which keeps
        # each patient's events in the order their transactions wrote them.
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("topic", String(200), nullable=False),
        Column("key", String(64), nullable=False),
        Column("event_type", String(80), nullable=False),
        Column("envelope", JSONB, nullable=False),
        # W3C trace context of the transaction that wrote the row, so the
        # relay's publish continues that trace instead of starting a new one.
        Column("trace_context", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        # Set on the first unsent row of a (topic, key) the broker refused for good
        # (carecoord_shared.messaging.relay): that key waits, the others flow.
        Column("parked_at", DateTime(timezone=True)),
        Column("park_error", String(80)),
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        Index(
            "ix_outbox_parked", "topic", "key", "id", postgresql_where=text("parked_at IS NOT NULL AND sent_at IS NULL")
        ),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("event_type", String(80), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    parked = Table(
        "parked_events",
        metadata,
        # The identity is the order the events arrived in, the order a release applies them.
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("patient_id", Uuid, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", String(80), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        # The record's value exactly as it came (a valid envelope: only valid events are parked).
        Column("value", LargeBinary, nullable=False),
        # handler_error / retries_exhausted for the event that failed; behind_parked for those after it.
        Column("reason", String(40), nullable=False),
        Column("error", String(120), nullable=False, server_default=""),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_parked_events_patient", "patient_id", "id"),
    )
    return MessagingTables(outbox=outbox, inbox=inbox, parked=parked)
