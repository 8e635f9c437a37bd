"""Durable timers: rows in the safety database, fired by a loop in the service.

A timer fires in the same transaction that marks it fired and writes its
effects (and their events), so a crash before the commit leaves it pending
and a crash after leaves it fired: exactly once. Rows are claimed with
FOR UPDATE SKIP LOCKED, so several instances never fire the same timer.
The clock is injected: tests move time instead of sleeping for hours.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Insert, select, update
from sqlalchemy.dialects.postgresql import insert as upsert

from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork

from .models import timers
from .writes import Writes

CHECKIN_MISSED = "checkin_missed"
CHECKIN_REVIEW = "checkin_review"
REVIEW_OVERDUE = "review_overdue"
# On-call was paged about an overdue review: unacknowledged when this fires, the clinical lead is.
LEAD_ESCALATION = "lead_escalation"

Clock = Callable[[], datetime]
Fire = Callable[[Transaction, Any, datetime], Awaitable[None]]

log = structlog.get_logger("carecoord.safety.timers")


def system_clock() -> datetime:
    return datetime.now(UTC)


async def schedule(
    tx: Transaction, kind: str, *, patient_id: uuid.UUID, subject_id: uuid.UUID, due_at: datetime
) -> None:
    """Set (or move) the pending timer of this kind for this subject."""
    await tx.session.execute(scheduling(kind, patient_id=patient_id, subject_id=subject_id, due_at=due_at))


def scheduling(kind: str, *, patient_id: uuid.UUID, subject_id: uuid.UUID, due_at: datetime) -> Insert:
    """The statement that sets (or moves) the pending timer of this kind for this subject (to stage in a save).

    An upsert: SQLAlchemy has no cache key for the PostgreSQL dialect's insert (``inherit_cache = False``),
    so it, and a save holding it, is compiled again each time; a subject created in this transaction
    has no timer yet and takes :func:`stage_first` instead."""
    stmt = upsert(timers).values(
        timer_id=uuid.uuid4(), kind=kind, patient_id=patient_id, subject_id=subject_id, due_at=due_at
    )
    return stmt.on_conflict_do_update(
        constraint="uq_timers_kind_subject",
        set_={"due_at": due_at, "cancelled_at": None},
        where=timers.c.fired_at.is_(None),
    )


def stage_first(writes: Writes, kind: str, *, patient_id: uuid.UUID, subject_id: uuid.UUID, due_at: datetime) -> None:
    """Stage the first timer of this kind for a subject created in this transaction (it has none yet)."""
    writes.insert(timers, timer_id=uuid.uuid4(), kind=kind, patient_id=patient_id, subject_id=subject_id, due_at=due_at)


async def cancel(tx: Transaction, kind: str, *, subject_id: uuid.UUID, now: datetime) -> None:
    await tx.session.execute(
        update(timers)
        .where(timers.c.kind == kind, timers.c.subject_id == subject_id, timers.c.fired_at.is_(None))
        .values(cancelled_at=now)
    )


async def cancel_all(tx: Transaction, kinds: tuple[str, ...], *, subject_id: uuid.UUID, now: datetime) -> None:
    """Cancel the pending timers of these kinds for one subject: one statement."""
    await tx.session.execute(
        update(timers)
        .where(timers.c.kind.in_(kinds), timers.c.subject_id == subject_id, timers.c.fired_at.is_(None))
        .values(cancelled_at=now)
    )


class TimerLoop:
    def __init__(
        self, uow: UnitOfWork, fire: dict[str, Fire], *, clock: Clock = system_clock, interval_s: float = 1.0
    ) -> None:
        self._uow = uow
        self._fire = fire
        self._clock = clock
        self._interval_s = interval_s

    async def run(self) -> None:
        while True:
            try:
                while await self.tick() > 0:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: the timers wait in their table
                log.warning("timers.tick_failed", error=type(exc).__name__)
            await asyncio.sleep(self._interval_s)

    async def tick(self, batch: int = 100) -> int:
        """Fire the timers that are due now; returns how many fired."""
        now = self._clock()
        async with self._uow.transaction() as tx:
            due = (
                await tx.session.execute(
                    select(timers)
                    .where(timers.c.fired_at.is_(None), timers.c.cancelled_at.is_(None), timers.c.due_at <= now)
                    .order_by(timers.c.due_at)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for timer in due:
                await self._fire[timer.kind](tx, timer, now)
                await tx.session.execute(update(timers).where(timers.c.timer_id == timer.timer_id).values(fired_at=now))
                log.info("timer.fired", kind=timer.kind, timer_id=str(timer.timer_id))
        return len(due)
