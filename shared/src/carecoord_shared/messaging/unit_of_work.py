"""One database transaction for a state change, its inbox mark and its outbox rows.

    async with uow.transaction(cause=envelope) as tx:
        if not await tx.claim_inbox(envelope, topic):
            return                      # a redelivery: already handled
        ...change state through tx.session...
        tx.emit(SomethingHappened(...), patient_id=...)

Either all of it commits or none of it does. After a commit that emitted
events the relay is woken so they are published at once.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from opentelemetry import propagate
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..contracts import Envelope, Event, topic_for_event
from ..faults import FailurePoints
from .tables import MessagingTables


class Transaction:
    def __init__(self, session: AsyncSession, uow: UnitOfWork, cause: Envelope | None) -> None:
        self.session = session
        self.cause = cause
        self._uow = uow
        self.emitted: list[Envelope] = []

    async def claim_inbox(self, envelope: Envelope, topic: str) -> bool:
        """Record the event as processed; False when it already was (a redelivery).

        The insert takes the row lock, so a concurrent delivery of the same
        event waits for this transaction and then finds it processed.
        """
        inbox = self._uow.tables.inbox
        stmt = (
            insert(inbox)
            .values(event_id=envelope.event_id, event_type=envelope.type, topic=topic)
            .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
            .returning(inbox.c.event_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def lock_patient(self, patient_id: uuid.UUID) -> None:
        """Serialise this transaction with any other that locks the same patient.

        A transaction-scoped advisory lock: released at commit or rollback, so
        decisions about one patient (safety rules, bookings, invoices) see each
        other's writes instead of racing."""
        key = zlib.crc32(patient_id.bytes) - 2**31
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def emit(self, event: Event, *, patient_id: uuid.UUID) -> Envelope:
        envelope = Envelope.wrap(event, patient_id=patient_id, producer=self._uow.service, cause=self.cause)
        self.emitted.append(envelope)
        return envelope

    async def _write_outbox(self) -> None:
        if not self.emitted:
            return
        trace_context: dict[str, str] = {}
        propagate.inject(trace_context)
        await self.session.execute(
            self._uow.tables.outbox.insert(),
            [
                {
                    "event_id": env.event_id,
                    "topic": topic_for_event(env.type).name,
                    "key": str(env.patient_id),
                    "event_type": env.type,
                    "envelope": env.model_dump(mode="json"),
                    "trace_context": trace_context,
                }
                for env in self.emitted
            ],
        )


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        service: str,
        *,
        on_commit: Callable[[], None] = lambda: None,
        failure_points: FailurePoints | None = None,
    ) -> None:
        self.sessions = sessions
        self.tables = tables
        self.service = service
        self._on_commit = on_commit
        self._failure_points = failure_points or FailurePoints()

    @asynccontextmanager
    async def transaction(self, cause: Envelope | None = None) -> AsyncIterator[Transaction]:
        async with self.sessions() as session, session.begin():
            tx = Transaction(session, self, cause)
            yield tx
            await tx._write_outbox()
            self._failure_points.reach("uow.before_commit", cause.type if cause else "")
        if tx.emitted:
            self._on_commit()
