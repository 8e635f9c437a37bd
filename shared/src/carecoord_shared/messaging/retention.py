"""Pruning the outbox and the inbox, which otherwise grow with every event forever.

- Sent outbox rows are kept a few days (to answer "was it published, when?")
  and then deleted; unsent rows are never touched, however old.
- Inbox rows are what makes a redelivery a no-op, so one may only go once the
  event can no longer be delivered again: after the longest a record can stay
  on any topic the service consumes. Kafka deletes whole segments, once the
  newest record of one is past retention.ms, so that is retention.ms plus the
  topic's segment.ms (both set in the topic registry), plus a margin for the
  broker's own delays. A shorter inbox retention is refused at startup rather
  than risking a duplicate.

Deletes go in small batches so a large backlog never holds long locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy import Select, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from carecoord_contracts import Topic

from .tables import MessagingTables

T = TypeVar("T")  # a row id: the outbox's integer, the inbox's event UUID

log = structlog.get_logger("carecoord.retention")

DAY_S = 24 * 3600

# Beyond retention.ms + segment.ms a record can still be read for: the broker's
# retention check interval (5 minutes by default) and file delete delay (1 minute),
# a producer whose clock ran ahead (the record's CreateTime is what retention counts
# from) and the consumer's clock against the producer's. A day covers all of them
# with room to spare; it costs only a day more of inbox rows.
MARGIN_DAYS = 1.0


def minimum_inbox_retention_days(consumed: tuple[Topic, ...]) -> float:
    """The shortest inbox retention under which no consumed record can be delivered after its inbox row is gone."""
    if not consumed:
        return 0.0
    return max(t.longest_life_ms for t in consumed) / 1000 / DAY_S + MARGIN_DAYS


class Retention:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tables: MessagingTables,
        *,
        sent_outbox_days: float,
        inbox_days: float,
        consumed: tuple[Topic, ...],
        batch_size: int = 5000,
        idempotency: Table | None = None,
        idempotency_days: float = 2.0,
    ) -> None:
        floor = minimum_inbox_retention_days(consumed)
        if inbox_days < floor:
            raise ValueError(
                f"CARECOORD_INBOX_RETENTION_DAYS={inbox_days:g} is shorter than the longest a record can stay on a topic "
                f"this service consumes ({floor:g} days: retention.ms + segment.ms + {MARGIN_DAYS:g} day): an event still "
                "on the topic could be delivered again after its inbox row was deleted, and be handled twice. "
                "Raise it to at least that."
            )
        self._sessions = sessions
        self._tables = tables
        self._sent_outbox = timedelta(days=sent_outbox_days)
        self._inbox = timedelta(days=inbox_days)
        self._batch_size = batch_size
        # Idempotency-Key outcomes (carecoord_shared.http.idempotency): a retry after this runs anew.
        self._idempotency = idempotency
        self._idempotency_age = timedelta(days=idempotency_days)

    async def prune_once(self, now: datetime | None = None) -> tuple[int, int]:
        """Delete what is past retention; returns (outbox rows, inbox rows) deleted."""
        now = now or datetime.now(UTC)
        outbox, inbox = self._tables.outbox, self._tables.inbox
        sent = await self._delete_in_batches(
            select(outbox.c.id).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < now - self._sent_outbox),
            lambda ids: delete(outbox).where(outbox.c.id.in_(ids)),
        )
        handled = await self._delete_in_batches(
            select(inbox.c.event_id).where(inbox.c.processed_at < now - self._inbox),
            lambda ids: delete(inbox).where(inbox.c.event_id.in_(ids)),
        )
        keys = await self._prune_idempotency(now) if self._idempotency is not None else 0
        if sent or handled or keys:
            log.info("retention.pruned", outbox_rows=sent, inbox_rows=handled, idempotency_keys=keys)
        return sent, handled

    async def _prune_idempotency(self, now: datetime) -> int:
        table = self._idempotency
        assert table is not None
        key = (table.c.subject, table.c.route, table.c.key)
        total = 0
        while True:
            old = select(*key).where(table.c.created_at < now - self._idempotency_age).limit(self._batch_size)
            async with self._sessions.begin() as session:
                deleted = (await session.execute(delete(table).where(tuple_(*key).in_(old)))).rowcount  # type: ignore[attr-defined]
            total += int(deleted)
            if deleted < self._batch_size:
                return total

    async def _delete_in_batches(self, candidates: Select[tuple[T]], statement: Callable[[list[T]], Executable]) -> int:
        total = 0
        while True:
            async with self._sessions.begin() as session:
                ids = list((await session.execute(candidates.limit(self._batch_size))).scalars())
                if ids:
                    await session.execute(statement(ids))
            total += len(ids)
            if len(ids) < self._batch_size:
                return total

    async def run(self, interval_s: float = 3600.0) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception as exc:  # the next pass tries again; pruning late costs only disk
                log.warning("retention.failed", error=type(exc).__name__)
            await asyncio.sleep(interval_s)
