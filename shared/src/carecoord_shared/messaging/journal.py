"""A consumer's own record of the events it received about each patient.

Services that only need to know *that* something happened (so far, scheduling
and billing for the headline flow) keep this journal; it is written in the
handler's transaction, so it is deduplicated by the inbox like any state.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Uuid, func, insert, select

from ..auth import Access, Role, allow
from ..contracts import Event
from ..service import UowDep
from .consumer import EventConsumer
from .unit_of_work import Transaction


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
    async def record(_event: Event, tx: Transaction) -> None:
        assert tx.cause is not None
        await tx.session.execute(
            insert(journal).values(
                event_id=tx.cause.event_id,
                patient_id=tx.cause.patient_id,
                event_type=tx.cause.type,
                producer=tx.cause.producer,
                occurred_at=tx.cause.occurred_at,
            )
        )

    for event_type in event_types:
        consumer.on(event_type)(record)


class JournalEntry(BaseModel):
    event_id: uuid.UUID
    event_type: str
    producer: str
    occurred_at: datetime
    recorded_at: datetime


def journal_router(journal: Table) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["received events"])

    @router.get("/patients/{patient_id}/received-events", response_model=list[JournalEntry])
    async def received_events(
        patient_id: uuid.UUID,
        uow: UowDep,
        access: Annotated[Access, allow(Role.OPERATOR, Role.CLINICIAN, Role.SERVICE)],
    ) -> Any:
        await access.patient(patient_id, "read", "received-events", operational=True)
        async with uow.sessions() as session:
            rows = await session.execute(
                select(journal).where(journal.c.patient_id == patient_id).order_by(journal.c.occurred_at).limit(1000)
            )
            return [r._asdict() for r in rows]

    return router
