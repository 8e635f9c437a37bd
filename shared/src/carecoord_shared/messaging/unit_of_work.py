"""One database transaction for a state change, its inbox mark and its outbox rows.

    async with uow.transaction(cause=envelope) as tx:
        if not await tx.claim_inbox(envelope, topic):
            return                      # a redelivery: already handled
        ...change state through tx.session...
        tx.emit(SomethingHappened(...), patient_id=...)

Either all of it commits or none of it does. After a commit that wrote outbox
rows, the rows are handed to the relay (``publish``), which sends them at once
from memory; the one INSERT that writes them also returns, per row, the older
unsent rows of its (topic, key), which is what lets the relay know it may send
a row without reading the outbox first (relay.py says how order is kept).

A consumer with a backlog handles several events in one transaction
(:meth:`UnitOfWork.batch`): one statement claims them all (and finds which of
their patients are parked, :meth:`UnitOfWork.claim_unless_parked`), each event's
handlers get a :class:`HandlerTransaction` of their own on the shared session (their
own cause, their own emitted events, their own trace context on the outbox
rows), and one commit makes all of it durable. The commit (a WAL flush) and
the round trips around it are most of what one event costs, so sharing them
is where a hop's throughput comes from. All or nothing still holds, now for
the group: the caller falls back to one transaction per event when it fails.

An event's handlers get a :class:`HandlerTransaction`, whose ``cause`` is that
event's envelope (never None); a route or a timer opens a plain
:class:`Transaction`, whose cause is None unless it names one.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry import propagate
from sqlalchemy import String, TextClause, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_contracts import Envelope, Event, topic_for_event

from ..faults import FailurePoints
from .locks import lock_for_transaction, patient_lock
from .parking import Claim, Parked
from .tables import MessagingTables

# Older unsent rows of a key listed per inserted row; more than this and the relay
# leaves the row to its polling pass (a key with a backlog is not on the fast path).
OLDER_LISTED = 8
# Rows per INSERT (PostgreSQL's bind parameter limit is 32767; an outbox row takes 6).
INSERT_CHUNK = 1000


@dataclass(frozen=True)
class CommittedRow:
    """An outbox row as its transaction wrote it, handed to the relay after COMMIT
    (the fields of relay_send.OutboxRow, as the relay's own SELECT reads them)."""

    id: int
    event_id: uuid.UUID
    topic: str
    key: str
    event_type: str
    body: str
    version: str
    producer: str
    trace_context: dict[str, str]
    # Ids of the key's rows that were committed and unsent when this one was
    # inserted, oldest first; None when there were more than OLDER_LISTED.
    older: tuple[int, ...] | None


_INSERT_RETURNING = text(
    """
    WITH ins AS (
        INSERT INTO outbox (event_id, topic, key, event_type, envelope, trace_context)
        SELECT r.event_id, r.topic, r.key, r.event_type, r.envelope::jsonb, r.trace_context::jsonb
        FROM unnest(
            CAST(:event_ids AS uuid[]), CAST(:topics AS text[]), CAST(:keys AS text[]),
            CAST(:types AS text[]), CAST(:envelopes AS text[]), CAST(:traces AS text[])
        ) WITH ORDINALITY AS r(event_id, topic, key, event_type, envelope, trace_context, n)
        ORDER BY r.n  -- ids in the order the events were emitted
        RETURNING id, event_id, topic, key, event_type, envelope::text AS body,
            envelope ->> 'version' AS version, envelope ->> 'producer' AS producer, trace_context
    )
    SELECT ins.*, ARRAY(
        SELECT prior.id FROM outbox AS prior
        WHERE prior.sent_at IS NULL AND prior.topic = ins.topic AND prior.key = ins.key AND prior.id < ins.id
        ORDER BY prior.id LIMIT :listed
    ) AS older
    FROM ins
    """
).columns(trace_context=JSONB)


class Transaction:
    cause: Envelope | None

    def __init__(
        self, session: AsyncSession, uow: UnitOfWork, cause: Envelope | None, emitted: list[Envelope] | None = None
    ) -> None:
        self.session = session
        self.cause = cause
        self._uow = uow
        self.emitted: list[Envelope] = [] if emitted is None else emitted

    def caused_by(self, cause: Envelope) -> HandlerTransaction:
        """This transaction, from now on on behalf of ``cause``: the view its handlers get.

        For an event read inside a transaction opened without one (a parked event applied in
        the transaction that unparks it). The view shares the session and the emitted events,
        so what the handlers emit is written with this transaction's outbox rows."""
        self.cause = cause
        return HandlerTransaction(self.session, self._uow, cause, self.emitted)

    async def claim_inbox(self, envelope: Envelope, topic: str) -> bool:
        """Record the event as processed; False when it already was (a redelivery).

        The insert takes the row lock, so a concurrent delivery of the same
        event waits for this transaction and then finds it processed.
        """
        return bool(await self._uow.claim(self.session, [(envelope, topic)]))

    async def claim_inbox_unless_parked(self, envelope: Envelope, topic: str) -> Claim:
        """:meth:`claim_inbox`, unless the event's patient is parked: then nothing is claimed and
        the claim says what is parked for them. One statement (see :meth:`UnitOfWork.claim_unless_parked`)."""
        return await self._uow.claim_unless_parked(self.session, [(envelope, topic)])

    async def lock_patient(self, patient_id: uuid.UUID) -> None:
        """Serialise this transaction with any other that locks the same patient.

        A transaction-scoped advisory lock: released at commit or rollback, so
        decisions about one patient (safety rules, bookings, invoices) see each
        other's writes instead of racing."""
        await lock_for_transaction(self.session, patient_lock(patient_id))

    def emit(self, event: Event, *, patient_id: uuid.UUID) -> Envelope:
        envelope = Envelope.wrap(event, patient_id=patient_id, producer=self._uow.service, cause=self.cause)
        self.emitted.append(envelope)
        return envelope

    def outbox_rows(self) -> list[dict[str, object]]:
        """The outbox rows of what was emitted, carrying the trace context current now (the handler's span)."""
        if not self.emitted:
            return []
        trace_context: dict[str, str] = {}
        propagate.inject(trace_context)
        return [
            {
                "event_id": env.event_id,
                "topic": topic_for_event(env.type).name,
                "key": str(env.patient_id),
                "event_type": env.type,
                "envelope": env.model_dump(mode="json"),
                "trace_context": trace_context,
            }
            for env in self.emitted
        ]


class HandlerTransaction(Transaction):
    """An event's handlers' transaction: ``cause`` is the envelope being handled, never None."""

    cause: Envelope

    def __init__(
        self, session: AsyncSession, uow: UnitOfWork, cause: Envelope, emitted: list[Envelope] | None = None
    ) -> None:
        super().__init__(session, uow, cause, emitted)


TxT = TypeVar("TxT", bound=Transaction)


class Batch:
    """Several events' work in one transaction; see the module docstring."""

    def __init__(self, session: AsyncSession, uow: UnitOfWork) -> None:
        self.session = session
        self._uow = uow
        self._rows: list[dict[str, object]] = []
        self.causes: list[Envelope] = []

    async def claim_inbox_unless_parked(self, events: Sequence[tuple[Envelope, str]]) -> Claim:
        """Claim the events of every patient not parked, and say who is parked, in one statement."""
        return await self._uow.claim_unless_parked(self.session, events)

    def transaction(self, cause: Envelope) -> HandlerTransaction:
        """A transaction view for one event's handlers, on the batch's session."""
        self.causes.append(cause)
        return HandlerTransaction(self.session, self._uow, cause)

    def stage(self, tx: Transaction) -> None:
        """Keep ``tx``'s outbox rows (with the trace context current now) for the batch's one insert."""
        self._rows += tx.outbox_rows()

    @property
    def emitted(self) -> bool:
        return bool(self._rows)


class UnitOfWork:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        service: str,
        *,
        on_commit: Callable[[], None] = lambda: None,
        publish: Callable[[Sequence[CommittedRow]], None] | None = None,
        failure_points: FailurePoints | None = None,
    ) -> None:
        """``on_commit``: called after a commit that wrote outbox rows. ``publish``: given
        those rows after the commit (the relay's fast path); without it the rows are
        written with a plain INSERT and only ``on_commit`` hears of them."""
        self.sessions = sessions
        self.tables = tables
        self.service = service
        self._on_commit = on_commit
        self._publish = publish
        self._failure_points = failure_points or FailurePoints()
        self._claim_unless_parked = _claim_unless_parked(tables)
        self._first_step: Callable[[AsyncSession], Awaitable[None]] | None = None

    def with_first_step(self, step: Callable[[AsyncSession], Awaitable[None]]) -> UnitOfWork:
        """This unit of work for one request whose first transaction runs ``step`` as its first statement,
        so what ``step`` writes commits with that transaction's change or not at all (an HTTP
        Idempotency-Key's claim: carecoord_shared.http.idempotency). Later transactions do not run it."""
        view = copy.copy(self)
        view._first_step = step
        return view

    def transaction(self, cause: Envelope | None = None) -> AbstractAsyncContextManager[Transaction]:
        """A transaction for a route, a timer or a job (``cause``: the envelope its events follow, if any)."""
        return self._open(lambda session: Transaction(session, self, cause), cause)

    def handling(self, cause: Envelope) -> AbstractAsyncContextManager[HandlerTransaction]:
        """A transaction for ``cause``'s handlers: its ``cause`` is not optional."""
        return self._open(lambda session: HandlerTransaction(session, self, cause), cause)

    @asynccontextmanager
    async def _open(self, make: Callable[[AsyncSession], TxT], cause: Envelope | None) -> AsyncIterator[TxT]:
        async with self.sessions() as session, session.begin():
            tx = make(session)
            if self._first_step is not None:
                step, self._first_step = self._first_step, None
                await step(session)
            yield tx
            written = await self._write_outbox(session, tx.outbox_rows())
            self._failure_points.reach("uow.before_commit", cause.type if cause else "")
        if tx.emitted:
            self._committed(written)

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[Batch]:
        async with self.sessions() as session, session.begin():
            batch = Batch(session, self)
            yield batch
            written = await self._write_outbox(session, batch._rows)
            for cause in batch.causes:
                self._failure_points.reach("uow.before_commit", cause.type)
        if batch.emitted:
            self._committed(written)

    def _committed(self, written: list[CommittedRow]) -> None:
        # Only after COMMIT returned: a row handed over is durable. A commit whose outcome
        # is unknown (the connection dropped) raised instead, and the polling pass finds its rows.
        if self._publish is not None and written:
            self._publish(written)
        self._on_commit()

    async def claim(self, session: AsyncSession, events: Sequence[tuple[Envelope, str]]) -> set[uuid.UUID]:
        # One statement for any number of events. An id twice in it is claimed once:
        # ON CONFLICT DO NOTHING also skips a row that conflicts with an earlier row
        # of the same statement.
        inbox = self.tables.inbox
        stmt = (
            insert(inbox)
            .values([{"event_id": env.event_id, "event_type": env.type, "topic": topic} for env, topic in events])
            .on_conflict_do_nothing(index_elements=[inbox.c.event_id])
            .returning(inbox.c.event_id)
        )
        return set((await session.execute(stmt)).scalars())

    async def claim_unless_parked(self, session: AsyncSession, events: Sequence[tuple[Envelope, str]]) -> Claim:
        """Claim the events whose patient is not parked and read the parked ones' rows, in ONE statement.

        What the consumer did in two round trips (the parked events of these patients, then the
        inbox insert of the others), as one: a CTE reads the patients' parked rows, the insert
        takes only the events of patients without any, and both come back together. Both parts
        read the statement's one snapshot, as the two statements each read their own before; the
        insert's row locks and ON CONFLICT behave as in :meth:`claim`. A patient's parked rows come
        in arrival order (``id``): the first is the head that holds them.
        """
        if not events:
            return Claim(set(), {})
        # The one statement object with the values as parameters (not .bindparams(values), a new
        # statement each call whose cache key SQLAlchemy would compute again for every event).
        params = {
            "event_ids": [env.event_id for env, _topic in events],
            "event_types": [env.type for env, _topic in events],
            "topics": [topic for _env, topic in events],
            "patient_ids": [env.patient_id for env, _topic in events],
        }
        claim = Claim(set(), {})
        held_rows = []
        for event_id, patient_id, row_id in (await session.execute(self._claim_unless_parked, params)).all():
            if patient_id is None:
                claim.claimed.add(event_id)
            else:
                held_rows.append((row_id, patient_id, event_id))
        for _row_id, patient_id, event_id in sorted(held_rows):
            claim.parked.setdefault(patient_id, Parked(head=event_id, events=set())).events.add(event_id)
        return claim

    async def _write_outbox(self, session: AsyncSession, rows: list[dict[str, object]]) -> list[CommittedRow]:
        if not rows:
            return []
        if self._publish is None:
            await session.execute(self.tables.outbox.insert(), rows)
            return []
        written: list[CommittedRow] = []
        for start in range(0, len(rows), INSERT_CHUNK):  # one statement unless a batch is huge
            written += await self._insert_returning(session, rows[start : start + INSERT_CHUNK])
        return written

    async def _insert_returning(self, session: AsyncSession, rows: list[dict[str, object]]) -> list[CommittedRow]:
        # One statement, as the plain insert is: the rows, what the relay sends of each
        # (the envelope as PostgreSQL renders it, as the relay's own SELECT reads it) and
        # the key's older unsent rows. The subquery reads the statement's snapshot: rows
        # committed before it, never the ones it inserts (the relay gets those in this hand-over).
        # Arrays through unnest, so the SQL is the same for any number of rows (compiled and
        # prepared once; a multi-row VALUES is compiled anew on every call, ~1.7 ms of CPU).
        params = {
            "event_ids": [r["event_id"] for r in rows],
            "topics": [r["topic"] for r in rows],
            "keys": [r["key"] for r in rows],
            "types": [r["event_type"] for r in rows],
            "envelopes": [json.dumps(r["envelope"]) for r in rows],
            "traces": [json.dumps(r["trace_context"]) for r in rows],
            "listed": OLDER_LISTED + 1,
        }
        result = await session.execute(_INSERT_RETURNING, params)
        return [
            CommittedRow(
                id=r.id,
                event_id=r.event_id,
                topic=r.topic,
                key=r.key,
                event_type=r.event_type,
                body=r.body,
                version=r.version,
                producer=r.producer,
                trace_context=r.trace_context,
                older=tuple(r.older) if len(r.older) <= OLDER_LISTED else None,
            )
            for r in result
        ]


def _claim_unless_parked(tables: MessagingTables) -> TextClause:
    """The one statement of :meth:`UnitOfWork.claim_unless_parked`, over arrays: its text is the same
    for any number of events, so SQLAlchemy compiles it once and asyncpg prepares it once per
    connection (a multi-row VALUES is compiled anew for each call and prepared for each batch size)."""
    inbox, parked = tables.inbox.name, tables.parked.name
    return text(
        f"""
        WITH arrived AS (
            SELECT * FROM unnest(:event_ids, :event_types, :topics, :patient_ids)
                AS a(event_id, event_type, topic, patient_id)
        ), held AS (
            SELECT id, patient_id, event_id FROM {parked} WHERE patient_id = ANY(:patient_ids)
        ), claimed AS (
            INSERT INTO {inbox} (event_id, event_type, topic)
            SELECT event_id, event_type, topic FROM arrived
            WHERE patient_id NOT IN (SELECT patient_id FROM held)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
        )
        SELECT event_id, NULL::uuid AS patient_id, NULL::bigint AS id FROM claimed
        UNION ALL
        SELECT event_id, patient_id, id FROM held
        """
    ).bindparams(
        bindparam("event_ids", type_=ARRAY(Uuid)),
        bindparam("event_types", type_=ARRAY(String)),
        bindparam("topics", type_=ARRAY(String)),
        bindparam("patient_ids", type_=ARRAY(Uuid)),
    )
