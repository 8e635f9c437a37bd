"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Woken right after a commit that wrote rows (polling is only the fallback for
rows left behind by a crash or written by another instance). Each pass takes a
transaction-scoped advisory lock, so however many instances of a service run,
one relay publishes at a time, and sends each (topic, key)'s rows as one record
batch (relay_send says why): a key's rows reach the topic in the order their
transactions wrote them even when a batch fails. Exactly the rows the broker
acknowledged (acks=all) are marked sent; a crash between send and mark
re-sends them, and consumers drop the duplicates by event id.

A key the broker refuses for good (topic missing or not authorised, record too
large) is *parked* on the row it refused: only that key waits, nothing after
that row is sent, the other keys flow, and the key is tried again every
``park_retry_s`` (a topic created later flows again). A transient failure
(broker away) retries the key after a backoff and parks nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
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
from .relay_send import OutboxRow, Outcome, PassSender, Record
from .tables import MessagingTables
from .tracing import publish_span

log = structlog.get_logger("carecoord.outbox")

# Parked keys listed in readiness, oldest first; the gauge counts them all.
PARKED_LISTED = 20


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
        self._wakeup = asyncio.Event()
        self._stopping = False
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
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.2
        try:
            while not self._stopping:
                try:
                    selected, retry = await self._pass()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or database away: keep the rows, try again
                    log.warning("outbox.publish_failed", error=type(exc).__name__, retry_in_s=backoff)
                    await self._drop_producer()
                    retry = True
                    selected = 0
                if retry:
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = 0.2
                if selected < self._batch_size:
                    await self._sleep_until_woken()
        finally:
            await self.close()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def close(self) -> None:
        """Close the relay's producer (run() does on its way out)."""
        await self._drop_producer()

    async def _sleep_until_woken(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval_s)
        except TimeoutError:
            pass
        self._wakeup.clear()

    async def drain_once(self) -> int:
        """Publish one pass of unsent rows; returns how many the broker acknowledged."""
        return len((await self._drain())[1].acked)

    async def _pass(self) -> tuple[int, bool]:
        """Rows selected, and whether to back off: keys failed and none went through
        (the broker away). While other keys flow, a failing key is simply in the next pass."""
        selected, outcome = await self._drain()
        return selected, bool(outcome.transient) and not outcome.acked

    async def _drain(self) -> tuple[int, Outcome]:
        # Clear first: a commit that lands while this pass runs wakes the next one.
        self._wakeup.clear()
        # Parked keys are left out of a pass, so they cannot fill it, except every park_retry_s.
        retry_parked = time.monotonic() >= self._parked_retry_at
        async with self._sessions() as session, session.begin():
            await lock_for_transaction(session, self._lock_key)
            rows = (await session.execute(self._unsent(retry_parked))).all()
            if not rows:
                return 0, Outcome()
            producer = await self._ready_producer()
            outcome = await PassSender(producer, self._max_batch_bytes, self._metadata_timeout_s).send(
                [self._record(row) for row in rows]
            )
            for row in outcome.acked:
                self._published.add(1, {"event_type": row.event_type})
            self._failure_points.reach("relay.after_send_before_mark")
            await self._mark(session, outcome)
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
