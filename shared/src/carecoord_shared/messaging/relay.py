"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Two paths, run one at a time by the relay's one task (run()):

- **Fast path (publish on commit).** The transaction's one outbox INSERT also
  returns what the relay sends of each row and the ids of the key's older
  rows that were committed and unsent in its snapshot; after COMMIT the unit
  of work hands the rows over (:meth:`OutboxRelay.publish`). A fast pass
  sends them at once, with no session check-out, lock or SELECT before the
  send, and marks exactly the acknowledged rows sent: not after each pass but
  every ``mark_interval_s`` (one autocommit UPDATE for all the passes since),
  so the next pass does not wait behind an UPDATE and its WAL flush, and one
  statement marks what each transaction's pass sent (the failure point
  ``relay.after_send_before_mark`` is between the send and that mark). A row
  acknowledged and not yet marked is one this process knows is on the broker:
  a polling pass marks it without sending it again, and after a crash the next
  process sends it again (at least once, as below).
- **Polling pass.** Under a transaction-scoped advisory lock (one polling
  relay per service at a time, however many instances run) it reads unsent
  rows in id order, sends them, marks the acknowledged ones and parks refused
  keys. It runs every ``poll_interval_s`` (rows left by a crash, written by
  another instance or not handed over: wake()), at once whenever the fast
  path leaves a row to it, and after its own failures with a backoff.

Per-key order. A fast pass sends a row only if every older unsent row its
insert saw is known to this process to be on the broker (acknowledged here,
by either path, and still remembered) or goes ahead of it in the same pass,
and its key has not failed here since a polling pass last found nothing of it
unsent ("dirty"). Otherwise that row and every later row of its key wait for
a polling pass, which sends in id order: another instance's unsent row (its
relay may hold it in memory), a refused or failed send, a row its snapshot
could not see. Forgetting only ever sends a row to the polling pass. Rows
of transactions that saw each other commit (one patient's transactions take
the patient's lock) are therefore never reordered; two transactions of one
key that ran at once have no order of their own, and the relay keeps their
id order unless the later one's send came first, as the polling pass alone
did when the later one committed first.

Both paths send each (topic, key)'s rows in a pass as one record batch
(relay_send says why): a key's rows reach the topic in order even when a
batch fails; a row that fails, is refused or does not fit the pass's batch
goes to the polling pass. At least once: a row is marked sent only after the
broker acknowledged it (acks=all); a crash between send and mark, or a row
sent by both paths or by two instances, is sent again, and consumers drop
the duplicates by event id (the first copy is on the log before any later row
of its key in every stream that carries it).

A key the broker refuses for good (topic missing or not authorised, record too
large) is *parked* by the polling pass on the row it refused: only that key
waits, nothing after that row is sent, the other keys flow, and the key is
tried again every ``park_retry_s`` (a topic created later flows again). A
transient failure (broker away) retries the key after a backoff and parks
nothing. ADR 0011 records the design.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry import metrics
from sqlalchemy import Text, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_contracts.envelope import routing_headers

from ..faults import FailurePoints
from ..telemetry import meter
from .locks import lock_for_transaction, relay_lock
from .relay_send import Key, OutboxRow, Outcome, PassSender, Record
from .tables import MessagingTables
from .tracing import publish_span
from .unit_of_work import CommittedRow

log = structlog.get_logger("carecoord.outbox")

# Parked keys listed in readiness, oldest first; the gauge counts them all.
PARKED_LISTED = 20
# How long the fast path's acknowledged rows wait to be marked sent, together (module docstring).
MARK_INTERVAL_S = 0.25
# How long a stopping relay gives its last mark.
FINAL_MARK_TIMEOUT_S = 2.0


class OutboxRelay:
    """``kafka``: the producer's connection options (bootstrap_servers, security, client_id...)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        kafka: dict[str, Any],
        *,
        service: str,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        park_retry_s: float = 30.0,
        max_batch_bytes: int = 256 * 1024,
        metadata_timeout_s: float = 5.0,
        failure_points: FailurePoints | None = None,
        on_published: Callable[[], None] = lambda: None,
        max_queued: int = 10_000,
        acked_remembered: int = 10_000,
        mark_interval_s: float = MARK_INTERVAL_S,
    ) -> None:
        self._sessions = sessions
        self._outbox = tables.outbox
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._park_retry_s = park_retry_s
        self._max_batch_bytes = max_batch_bytes
        self._metadata_timeout_s = metadata_timeout_s
        self._failure_points = failure_points or FailurePoints()
        self._on_published = on_published
        self._lock_key = relay_lock(service)
        self._work = asyncio.Event()
        self._poll_due = False
        self._stopping = False
        # The fast path's state (one task runs both paths, so no locks): rows handed over
        # and not yet sent; keys whose rows wait for a polling pass; ids this process saw
        # acknowledged, insertion-ordered, the oldest forgotten first.
        self._queue: list[CommittedRow] = []
        self._max_queued = max_queued
        self._dirty: set[Key] = set()
        self._acked: dict[int, None] = {}
        self._acked_remembered = acked_remembered
        # Acknowledged by the fast path and not marked yet, and when the oldest of them was.
        self._unmarked: dict[int, OutboxRow] = {}
        self._unmarked_since = 0.0
        self._mark_interval_s = mark_interval_s
        self._parked_retry_at = 0.0
        self._published = meter().create_counter("carecoord.events.published", description="Events published, by type")
        self.last_backlog: tuple[int, float | None] = (0, None)
        self.last_parked = 0
        meter().create_observable_gauge(
            "carecoord.outbox.backlog",
            callbacks=[lambda _o: [metrics.Observation(self.last_backlog[0])]],
            description="Outbox rows not yet published",
        )
        meter().create_observable_gauge(
            "carecoord.outbox.oldest_age",
            unit="s",
            callbacks=[lambda _o: [metrics.Observation(self.last_backlog[1] or 0.0)]],
            description="Age of the oldest unpublished outbox row",
        )
        meter().create_observable_gauge(
            "carecoord.outbox.parked_keys",
            callbacks=[lambda _o: [metrics.Observation(self.last_parked)]],
            description="Outbox keys waiting on a row the broker refused for good",
        )

    def wake(self) -> None:
        """Run a polling pass soon (rows written without a hand-over)."""
        self._poll_due = True
        self._work.set()

    def publish(self, rows: Sequence[CommittedRow]) -> None:
        """The rows a transaction has just committed: sent at once by the fast path."""
        self._queue += rows
        if len(self._queue) > self._max_queued:  # the broker away for long: the polling pass has them all
            for row in self._queue[: len(self._queue) - self._max_queued]:
                self._dirty.add((row.topic, row.key))
            del self._queue[: len(self._queue) - self._max_queued]
            self._poll_due = True
        self._work.set()

    async def run(self) -> None:
        backoff = 0.2
        next_poll = 0.0  # a polling pass first: what a crash left behind
        try:
            while not self._stopping:
                self._work.clear()  # anything handed over or woken from now on runs another turn
                if self._poll_due or time.monotonic() >= next_poll:
                    self._poll_due = False
                    try:
                        selected, retry = await self._pass()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # broker or database away: keep the rows, try again
                        log.warning("outbox.publish_failed", error=type(exc).__name__, retry_in_s=backoff)
                        await self._drop_producer()
                        self._fall_back(self._queue)
                        retry = True
                        selected = 0
                    next_poll = time.monotonic() + self._poll_interval_s
                    if retry:
                        self._poll_due = True
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 10.0)
                        continue
                    backoff = 0.2
                    if selected >= self._batch_size:
                        self._poll_due = True
                elif self._unmarked and (
                    time.monotonic() >= self._mark_due() or len(self._unmarked) >= self._batch_size
                ):
                    await self._mark_unmarked()
                elif self._queue:
                    await self._fast_pass()
                else:
                    wake_at = min(next_poll, self._mark_due()) if self._unmarked else next_poll
                    await self._sleep_until_woken(wake_at - time.monotonic())
        finally:
            await self._final_mark()
            await self.close()

    def stop(self) -> None:
        self._stopping = True
        self._work.set()

    async def close(self) -> None:
        """Close the relay's producer (run() does on its way out)."""
        await self._drop_producer()

    async def _sleep_until_woken(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._work.wait(), timeout=max(timeout, 0.0))
        except TimeoutError:
            pass

    async def _fast_pass(self) -> None:
        """Send what was handed over, except rows whose key may have older rows not yet on the
        broker; mark exactly the acknowledged rows sent. Anything else goes to the polling pass."""
        taken = sorted(self._queue[: self._batch_size], key=lambda r: r.id)
        del self._queue[: len(taken)]
        rows: list[CommittedRow] = []
        going: set[int] = set()
        for row in taken:
            key = (row.topic, row.key)
            if row.id in self._acked:
                continue  # a polling pass sent it already
            if (
                key in self._dirty
                or row.older is None
                or any(o not in self._acked and o not in going for o in row.older)
            ):
                # An older row of the key is not known to be on the broker (another instance's,
                # a failed or parked one, or one this process no longer remembers): the key, from
                # this row on, waits for the polling pass, which sends in id order.
                self._dirty.add(key)
                self._poll_due = True
                continue
            rows.append(row)
            going.add(row.id)
        if not rows:
            return
        outcome = Outcome()
        try:
            producer = await self._ready_producer()
            outcome = await PassSender(producer, self._max_batch_bytes, self._metadata_timeout_s).send(
                [self._record(row) for row in rows]
            )
            self._remember_acked(outcome.acked)
            for sent in outcome.acked:
                self._published.add(1, {"event_type": sent.event_type})
            self._defer_mark(outcome.acked)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # broker or database away: the polling pass has the rows
            log.warning("outbox.fast_path_failed", error=type(exc).__name__)
            if not outcome.acked:
                await self._drop_producer()
        acked = {row.id for row in outcome.acked}
        # Failed, refused, or left out of a full batch: the polling pass sends (or parks) them.
        self._fall_back([row for row in rows if row.id not in acked])
        if outcome.transient and not outcome.acked:
            await self._drop_producer()  # nothing went through: a producer whose sender died is not reused
        # The same lines as a polling pass (operators and alerts read one vocabulary), but a refused key
        # is not parked here: the polling pass it goes to parks it and says so.
        for error, keys in Counter(outcome.transient.values()).items():
            log.warning("outbox.keys_retrying", error=error, keys=keys, path="on_commit")
        if outcome.parked:
            log.info("outbox.keys_deferred", keys=len(outcome.parked), path="on_commit")
        log.debug("outbox.published", count=len(acked), path="on_commit")
        for _ in acked:
            self._on_published()

    def _defer_mark(self, rows: Sequence[OutboxRow]) -> None:
        if rows and not self._unmarked:
            self._unmarked_since = time.monotonic()
        for row in rows:
            self._unmarked[row.id] = row

    def _mark_due(self) -> float:
        return self._unmarked_since + self._mark_interval_s

    async def _mark_unmarked(self) -> None:
        """Mark what the fast path sent since the last mark. A failed mark is not retried here: the rows
        are known sent, so this process's polling pass marks them (unsent in the table, acknowledged in
        memory) and another process's sends them again."""
        rows, self._unmarked = list(self._unmarked.values()), {}
        try:
            self._failure_points.reach("relay.after_send_before_mark")
            # One UPDATE on its own, in autocommit: atomic as it is, without BEGIN and COMMIT round trips.
            async with self._sessions() as session:
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                await self._mark(session, Outcome(acked=rows))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("outbox.mark_failed", error=type(exc).__name__, rows=len(rows))

    async def _final_mark(self) -> None:
        """The relay stopping: what it sent is marked, within a bound (else sent again by the next process)."""
        rows = len(self._unmarked)  # _mark_unmarked takes them at once
        if not rows:
            return
        try:
            await asyncio.wait_for(self._mark_unmarked(), FINAL_MARK_TIMEOUT_S)
        except (TimeoutError, asyncio.CancelledError) as exc:
            log.warning("outbox.mark_failed", error=type(exc).__name__, rows=rows)

    def _fall_back(self, rows: Sequence[CommittedRow]) -> None:
        """Leave ``rows`` and every later row of their keys to the polling pass."""
        for row in rows:
            self._dirty.add((row.topic, row.key))
        if rows:
            self._poll_due = True

    def _remember_acked(self, rows: Sequence[OutboxRow]) -> None:
        for row in rows:
            self._acked[row.id] = None
        while len(self._acked) > self._acked_remembered:
            del self._acked[next(iter(self._acked))]

    def _after_poll(self, rows: Sequence[OutboxRow], outcome: Outcome, *, complete: bool, parked_in: bool) -> None:
        """What a polling pass tells the fast path: rows it sent (not to be sent again), keys
        with rows still unsent (dirty), and keys it found nothing unsent of (clean again)."""
        self._remember_acked(outcome.acked)
        acked = {row.id for row in outcome.acked}
        selected = {row.id for row in rows}
        keys = {(row.topic, row.key) for row in rows}
        unsent = {(row.topic, row.key) for row in rows if row.id not in acked}
        self._queue = [row for row in self._queue if row.id not in selected]
        self._dirty |= unsent
        # A key publish() marked dirty while this pass ran may be cleared below; that is safe only
        # because such a hand-over also set _poll_due, so another polling pass runs before any fast one.
        if complete:
            # Every committed unsent row was in this pass, but for the parked keys' when it
            # left them out (``parked_in`` False): a key not seen then may be parked, and stays
            # dirty until a pass with them finds nothing of it unsent. (A key with rows written
            # later by another instance is caught by the older-row check of the next row.)
            self._dirty -= (self._dirty if parked_in else keys) - unsent

    async def drain_once(self) -> int:
        """Publish one pass of unsent rows; returns how many the broker acknowledged."""
        return len((await self._drain())[1].acked)

    async def _pass(self) -> tuple[int, bool]:
        """Rows selected, and whether to back off: keys failed and none went through
        (the broker away). While other keys flow, a failing key is simply in the next pass."""
        selected, outcome = await self._drain()
        return selected, bool(outcome.transient) and not outcome.acked

    async def _drain(self) -> tuple[int, Outcome]:
        # Parked keys are left out of a pass, so they cannot fill it, except every park_retry_s.
        retry_parked = time.monotonic() >= self._parked_retry_at
        async with self._sessions() as session, session.begin():
            await lock_for_transaction(session, self._lock_key)
            rows = (await session.execute(self._unsent(retry_parked))).all()
            if not rows:
                self._after_poll([], Outcome(), complete=True, parked_in=retry_parked)
                return 0, Outcome()
            # Rows this process knows are on the broker (the fast path's, not marked yet) are marked,
            # not sent again; what follows them of their key is sent after them, in order.
            known = [row for row in rows if row.id in self._acked]
            outcome = Outcome()
            if to_send := [row for row in rows if row.id not in self._acked]:
                producer = await self._ready_producer()
                outcome = await PassSender(producer, self._max_batch_bytes, self._metadata_timeout_s).send(
                    [self._record(row) for row in to_send]
                )
            for row in outcome.acked:
                self._published.add(1, {"event_type": row.event_type})
            self._remember_acked(outcome.acked)
            marked = Outcome([*outcome.acked, *known], outcome.parked, outcome.transient)
            self._failure_points.reach("relay.after_send_before_mark")
            await self._mark(session, marked)
        for row in known:
            self._unmarked.pop(row.id, None)
        self._after_poll(rows, marked, complete=len(rows) < self._batch_size, parked_in=retry_parked)
        if retry_parked:
            self._parked_retry_at = time.monotonic() + self._park_retry_s
        self._report(outcome)
        if outcome.transient and not outcome.acked:
            await self._drop_producer()  # nothing went through: a producer whose sender died is not reused
        for _ in outcome.acked:
            self._on_published()
        return len(rows), outcome

    def _unsent(self, retry_parked: bool) -> Any:
        outbox = self._outbox
        query = (
            select(
                outbox.c.id,
                outbox.c.event_id,
                outbox.c.topic,
                outbox.c.key,
                outbox.c.event_type,
                # The envelope as the transaction wrote it (it was validated then):
                # sent as PostgreSQL renders it, not parsed and rebuilt per row.
                outbox.c.envelope.cast(Text).label("body"),
                outbox.c.envelope["version"].astext.label("version"),
                outbox.c.envelope["producer"].astext.label("producer"),
                outbox.c.trace_context,
            )
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(self._batch_size)
        )
        if retry_parked:
            return query
        parked = outbox.alias("parked")
        return query.where(
            ~exists().where(
                parked.c.parked_at.is_not(None),
                parked.c.sent_at.is_(None),
                parked.c.topic == outbox.c.topic,
                parked.c.key == outbox.c.key,
                parked.c.id <= outbox.c.id,
            )
        )

    async def _mark(self, session: AsyncSession, outcome: Outcome) -> None:
        outbox = self._outbox
        now = datetime.now(UTC)
        if outcome.acked:
            await session.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in outcome.acked])).values(sent_at=now)
            )
        if outcome.parked:
            park = (
                update(outbox)
                .where(outbox.c.id == bindparam("row_id"))
                .values(parked_at=func.coalesce(outbox.c.parked_at, now), park_error=bindparam("error"))
            )
            await session.execute(park, [{"row_id": row.id, "error": error} for row, error in outcome.parked.values()])

    def _report(self, outcome: Outcome) -> None:
        # Counts, topics, event types and error classes only: keys are patient ids.
        parked = Counter((topic, row.event_type, error) for (topic, _key), (row, error) in outcome.parked.items())
        for (topic, event_type, error), keys in parked.items():
            log.warning("outbox.keys_parked", topic=topic, event_type=event_type, error=error, keys=keys)
        for error, keys in Counter(outcome.transient.values()).items():
            log.warning("outbox.keys_retrying", error=error, keys=keys)
        log.debug("outbox.published", count=len(outcome.acked), parked=len(outcome.parked))

    def _record(self, row: OutboxRow) -> Record:
        event_id = str(row.event_id)
        with publish_span(row.topic, row.key, event_id, row.event_type, row.trace_context) as trace_headers:
            headers = routing_headers(event_id, row.event_type, row.version, row.producer) | trace_headers
        return Record(row, row.body.encode(), [(k, v.encode()) for k, v in headers.items()])

    async def _ready_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # The relay's own producer. acks="all": a row is marked sent only when every
            # in-sync replica has it. Not idempotent (service.py says why; and see relay_send).
            producer = AIOKafkaProducer(
                **self._kafka, acks="all", enable_idempotence=False, max_batch_size=self._max_batch_bytes
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception as exc:
                log.debug("outbox.producer_close_failed", error=type(exc).__name__)

    async def backlog(self) -> tuple[int, float | None]:
        """Unsent rows and the age in seconds of the oldest (for health and metrics)."""
        outbox = self._outbox
        async with self._sessions() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
                )
            ).one()
        age = (datetime.now(UTC) - oldest).total_seconds() if oldest else None
        self.last_backlog = (count, age)
        return count, age

    async def health(self) -> dict[str, Any]:
        """Backlog, oldest unsent age and parked keys: readiness's ``outbox`` and the gauges."""
        backlog, oldest_age = await self.backlog()
        outbox = self._outbox
        is_parked = (outbox.c.parked_at.is_not(None), outbox.c.sent_at.is_(None))
        async with self._sessions() as session:
            count = (await session.execute(select(func.count()).where(*is_parked))).scalar_one()
            listed = (
                await session.execute(
                    select(outbox.c.topic, outbox.c.event_type, outbox.c.parked_at, outbox.c.park_error)
                    .where(*is_parked)
                    .order_by(outbox.c.parked_at)
                    .limit(PARKED_LISTED)
                )
            ).all()
        self.last_parked = count
        now = datetime.now(UTC)
        parked = [
            {
                "topic": r.topic,
                "event_type": r.event_type,
                "since_s": (now - r.parked_at).total_seconds(),
                "error": r.park_error,
            }
            for r in listed
        ]
        return {"backlog": backlog, "oldest_age_s": oldest_age, "parked_keys": count, "parked": parked}
