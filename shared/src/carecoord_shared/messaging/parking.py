"""Parking: a patient's later events wait behind one of theirs that failed.

Events about one patient must take effect in the order they were committed.
When a valid event cannot be handled (a bug: ``handler_error``; transient
failures past the retry budget: ``retries_exhausted``) it is dead-lettered for
the operator to see, and also *parked*: kept in the service's own database,
with every later event of the same patient parked behind it instead of
applied. Other patients flow on. Offsets move past parked events: they are
durable here, not on the topic.

The event that holds a patient arriving again (`carecoord dlq replay` of its dead
letter, after a fix) is taken as the operator's word to try again: it releases
the patient. A redelivery of an event already parked parks nothing twice.

A release applies a patient's parked events in the order they arrived, each in
a transaction of its own (inbox, handlers, outbox, and the parked row deleted
together), and stops at the first that fails again. The consumer releases by
itself what it may (a head that is only ``behind_parked``, or one that failed
transiently, on a slow timer without bound); an event that hit a bug waits for
an operator's release (`carecoord parked release`) once the fix is deployed.

Garbage (a record that is no valid event) is dead-lettered and never parks a
patient: it is no event of theirs, and a hostile producer must not be able to
stop a patient's care by sending it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_contracts import Envelope

from .tables import MessagingTables

HANDLER_ERROR = "handler_error"
RETRIES_EXHAUSTED = "retries_exhausted"
BEHIND_PARKED = "behind_parked"
# Heads the consumer may retry by itself: nothing about them needs a fix.
SELF_RELEASING = frozenset({BEHIND_PARKED, RETRIES_EXHAUSTED})


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    patient_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    topic: str
    partition: int
    offset: int
    value: bytes
    reason: str
    error: str
    attempts: int
    parked_at: datetime

    def record(self) -> ConsumerRecord:
        """The record as it was consumed (for the handlers and a dead letter)."""
        return ConsumerRecord(
            self.topic,
            self.partition,
            self.offset,
            0,
            0,
            str(self.patient_id).encode(),
            self.value,
            None,
            -1,
            len(self.value),
            (),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "event_id": str(self.event_id),
            "event_type": self.event_type,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "error": self.error,
            "attempts": self.attempts,
            "parked_at": self.parked_at.isoformat(),
        }


@dataclass
class Parked:
    """A parked patient as a consumer sees it: the event that holds them, and all that wait."""

    head: uuid.UUID
    events: set[uuid.UUID]


@dataclass
class Claim:
    """What claiming events unless their patient is parked did (``UnitOfWork.claim_unless_parked``)."""

    # The event ids claimed now; an event of a patient not parked and not here was processed before.
    claimed: set[uuid.UUID]
    # The parked patients among the events', each with the events already parked for them.
    parked: dict[uuid.UUID, Parked]


class Parking:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], tables: MessagingTables) -> None:
        self._sessions = sessions
        self._table = tables.parked

    async def park(
        self, session: AsyncSession, envelope: Envelope, record: ConsumerRecord, reason: str, error: str = ""
    ) -> None:
        await session.execute(
            self._table.insert().values(
                patient_id=envelope.patient_id,
                event_id=envelope.event_id,
                event_type=envelope.type,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                value=record.value or b"",
                reason=reason,
                error=error[:120],
            )
        )

    async def head(self, session: AsyncSession, patient_id: uuid.UUID) -> ParkedEvent | None:
        """The patient's first parked event, locked so that one release at a time applies it."""
        t = self._table
        row = (
            await session.execute(
                select(t)
                .where(t.c.patient_id == patient_id)
                .order_by(t.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        ).first()
        return ParkedEvent(**row._mapping) if row else None

    async def unpark(self, session: AsyncSession, event: ParkedEvent) -> None:
        await session.execute(delete(self._table).where(self._table.c.id == event.id))

    async def failed_again(self, event: ParkedEvent, error: str) -> None:
        async with self._sessions() as session, session.begin():
            t = self._table
            await session.execute(
                update(t).where(t.c.id == event.id).values(attempts=t.c.attempts + 1, error=error[:120])
            )

    async def patients(self) -> list[dict[str, object]]:
        """Each parked patient: how many events wait and what holds them (its first event)."""
        t = self._table
        async with self._sessions() as session:
            counts = (
                await session.execute(select(t.c.patient_id, func.count(), func.min(t.c.id)).group_by(t.c.patient_id))
            ).all()
            heads = {
                row.id: ParkedEvent(**row._mapping)
                for row in (await session.execute(select(t).where(t.c.id.in_([c[2] for c in counts])))).all()
            }
        now = datetime.now(UTC)
        return [
            {
                "patient_id": str(patient),
                "events": count,
                "head": heads[first].as_json(),
                "parked_s": round((now - heads[first].parked_at).total_seconds(), 1),
            }
            for patient, count, first in sorted(counts, key=lambda c: c[2])
        ]

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(
                (await session.execute(select(func.count(func.distinct(self._table.c.patient_id))))).scalar_one()
            )

    async def self_releasing(self) -> list[uuid.UUID]:
        """Parked patients whose first event the consumer may retry by itself."""
        t = self._table
        first = select(t.c.patient_id, func.min(t.c.id).label("id")).group_by(t.c.patient_id).subquery()
        async with self._sessions() as session:
            rows = await session.execute(
                select(t.c.patient_id)
                .join(first, t.c.id == first.c.id)
                .where(t.c.reason.in_(SELF_RELEASING))
                .order_by(t.c.id)
            )
            return list(rows.scalars())
