"""The outbox relay: publishes committed outbox rows to Kafka, in order.

Woken right after a commit that wrote rows (polling is only the fallback for
rows left behind by a crash or written by another instance). Each pass takes a
transaction-scoped advisory lock, so however many instances of a service run,
one relay publishes at a time and rows go out in id order, which is the order
per patient key. Rows are marked sent only after the broker acknowledged them
(acks=all); a crash between send and mark re-sends them,
and consumers drop the duplicates by event id.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from opentelemetry import metrics
from sqlalchemy import Text, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..contracts.envelope import routing_headers
from ..faults import FailurePoints
from ..telemetry import meter
from .tables import MessagingTables
from .tracing import publish_span

# publish(topic, value, key, headers) -> a future resolved when the broker acknowledged.
Publish = Callable[[str, bytes, bytes, dict[str, str]], Awaitable["asyncio.Future[Any]"]]

log = structlog.get_logger("carecoord.outbox")


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        publish: Publish,
        *,
        service: str,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        failure_points: FailurePoints | None = None,
    ) -> None:
        self._sessions = sessions
        self._outbox = tables.outbox
        self._publish = publish
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._failure_points = failure_points or FailurePoints()
        self._lock_key = zlib.crc32(f"carecoord.outbox.{service}".encode())
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._published = meter().create_counter("carecoord.events.published", description="Events published, by type")
        self.last_backlog: tuple[int, float | None] = (0, None)
        meter().create_observable_gauge(
            "carecoord.outbox.backlog", callbacks=[lambda _o: [metrics.Observation(self.last_backlog[0])]],
            description="Outbox rows not yet published",
        )
        meter().create_observable_gauge(
            "carecoord.outbox.oldest_age", unit="s", callbacks=[lambda _o: [metrics.Observation(self.last_backlog[1] or 0.0)]],
            description="Age of the oldest unpublished outbox row",
        )

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                sent = await self.drain_once()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, try again
                log.warning("outbox.publish_failed", error=type(exc).__name__, retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if sent < self._batch_size:
                await self._sleep_until_woken()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def _sleep_until_woken(self) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._poll_interval_s)
        except TimeoutError:
            pass
        self._wakeup.clear()

    async def drain_once(self) -> int:
        """Publish one batch of unsent rows; returns how many were sent."""
        # Clear first: a commit that lands while this pass runs wakes the next one.
        self._wakeup.clear()
        outbox = self._outbox
        async with self._sessions() as session, session.begin():
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock_key})
            rows = (
                await session.execute(
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
            ).all()
            if not rows:
                return 0
            pending = [await self._send(row) for row in rows]
            await asyncio.gather(*pending)
            for row in rows:
                self._published.add(1, {"event_type": row.event_type})
            self._failure_points.reach("relay.after_send_before_mark")
            await session.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(sent_at=datetime.now(UTC))
            )
        log.debug("outbox.published", count=len(rows))
        return len(rows)

    async def _send(self, row: Any) -> asyncio.Future[Any]:
        event_id = str(row.event_id)
        with publish_span(row.topic, row.key, event_id, row.event_type, row.trace_context) as trace_headers:
            headers = routing_headers(event_id, row.event_type, row.version, row.producer) | trace_headers
            return await self._publish(row.topic, row.body.encode(), row.key.encode(), headers)

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
