"""A consumer's own record of the events it received about each patient.

Services that only need to know *that* something happened (so far, scheduling
and billing for the headline flow) keep this journal; it is written in the
handler's transaction, so it is deduplicated by the inbox like any state. Its
HTTP route (``/v1/patients/{id}/received-events``) is ``carecoord_shared.http.journal``.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Uuid, func, insert

from carecoord_contracts import Event

from .consumer import EventConsumer
from .unit_of_work import HandlerTransaction


def journal_table(metadata: MetaData) -> Table:
    return Table(
        "event_journal",
        metadata,
        Column("event_id", Uuid, primary_key=True),
        Column("patient_id", Uuid, nullable=False),
        Column("event_type", String(80), nullable=False),
        Column("producer", String(40), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_event_journal_patient", "patient_id", "occurred_at"),
    )


def record_events(consumer: EventConsumer, journal: Table, *event_types: type[Event]) -> None:
    # One statement object, its values bound per event: a fresh insert().values() and its cache key
    # per event was most of the journal's CPU (#22's profile).
    statement = insert(journal)

    async def record(_event: Event, tx: HandlerTransaction) -> None:
        await tx.session.execute(
            statement,
            {
                "event_id": tx.cause.event_id,
                "patient_id": tx.cause.patient_id,
                "event_type": tx.cause.type,
                "producer": tx.cause.producer,
                "occurred_at": tx.cause.occurred_at,
            },
        )

    for event_type in event_types:
        consumer.on(event_type)(record)
