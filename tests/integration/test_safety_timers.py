"""Durable timers against real PostgreSQL, with an injected clock (no sleeping for hours)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from carecoord_devstack.stack import Stack
from carecoord_safety import reviews, rules, sessions, timers
from carecoord_safety.app import definition
from carecoord_safety.models import clinician_reviews, messaging
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from carecoord_devstack.scratch import scratch_database

RULES = rules.load()
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class SafetyDb:
    """One instance of the safety service's persistence: what a restart throws away."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.uow = UnitOfWork(create_sessions(self.engine), messaging, "safety")

    def loop(self, clock: Clock, actions: dict[str, Any] | None = None) -> timers.TimerLoop:
        return timers.TimerLoop(self.uow, actions or sessions.timer_actions(RULES), clock=clock)

    async def outbox_types(self, patient: uuid.UUID) -> list[str]:
        async with self.uow.sessions() as s:
            rows = await s.execute(
                select(messaging.outbox.c.event_type).where(messaging.outbox.c.key == str(patient)).order_by(messaging.outbox.c.id)
            )
            return list(rows.scalars())

    async def reviews_of(self, patient: uuid.UUID) -> list[Any]:
        async with self.uow.sessions() as s:
            return list(await s.execute(select(clinician_reviews).where(clinician_reviews.c.patient_id == patient)))


@pytest.fixture
async def db_url(stack: Stack) -> AsyncIterator[str]:
    url = await scratch_database(stack, "safety_timers", "safety")
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    yield url


async def _book(db: SafetyDb, patient: uuid.UUID, appointment: uuid.UUID) -> None:
    async with db.uow.transaction() as tx:
        await sessions.booked(tx, RULES, appointment_id=appointment, patient_id=patient, starts_at=T0)


async def test_check_in_timers_survive_a_restart_and_fire_exactly_once(db_url: str) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    first = SafetyDb(db_url)
    await _book(first, patient, appointment)
    clock = Clock(T0 + timedelta(hours=3, minutes=59))
    assert await first.loop(clock).tick() == 0, "not due yet"
    await first.engine.dispose()  # the service goes away mid-wait

    second = SafetyDb(db_url)  # ... and comes back
    clock.now = T0 + timedelta(hours=4)
    assert await second.loop(clock).tick() == 1
    assert await second.loop(clock).tick() == 0, "fired once, not again"
    assert await second.outbox_types(patient) == ["CheckInMissed"]

    # At 8 h two instances race for the review timer: one fires it.
    clock.now = T0 + timedelta(hours=8)
    third = SafetyDb(db_url)
    fired = await asyncio.gather(second.loop(clock).tick(), third.loop(clock).tick())
    assert sorted(fired) == [0, 1]
    [review] = await second.reviews_of(patient)
    assert (review.reason, review.priority, review.status) == ("missed_check_in", "high", "open")
    assert await second.outbox_types(patient) == ["CheckInMissed", "ClinicianReviewOpened"]
    for db in (second, third):
        await db.engine.dispose()


async def test_a_check_in_in_time_cancels_both_timers(db_url: str) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    db = SafetyDb(db_url)
    await _book(db, patient, appointment)
    async with db.uow.transaction() as tx:
        await sessions.checked_in(tx, appointment, now=T0 + timedelta(hours=2))
    assert await db.loop(Clock(T0 + timedelta(hours=9))).tick() == 0
    assert await db.outbox_types(patient) == []
    await db.engine.dispose()


async def test_a_failure_while_firing_leaves_the_timer_pending_until_it_succeeds(db_url: str) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    db = SafetyDb(db_url)
    await _book(db, patient, appointment)
    actions = sessions.timer_actions(RULES)
    real = actions[timers.CHECKIN_MISSED]
    calls = 0

    async def crashes_once(tx: Any, timer: Any, now: datetime) -> None:
        nonlocal calls
        calls += 1
        await real(tx, timer, now)  # the effect is written ...
        if calls == 1:
            raise ConnectionError("database went away before the commit")  # ... and rolled back

    actions[timers.CHECKIN_MISSED] = crashes_once
    clock = Clock(T0 + timedelta(hours=5))
    with pytest.raises(ConnectionError):
        await db.loop(clock, actions).tick()
    assert await db.outbox_types(patient) == []
    assert await db.loop(clock, actions).tick() == 1
    assert await db.outbox_types(patient) == ["CheckInMissed"]
    await db.engine.dispose()


async def test_an_unacknowledged_review_becomes_overdue_once_with_raised_priority(db_url: str) -> None:
    patient, acknowledged_patient = uuid.uuid4(), uuid.uuid4()
    db = SafetyDb(db_url)
    [request] = RULES.assess(rules.SideEffect(at=T0, grade=2, symptoms=("nausea",))).reviews  # routine, due in 24 h
    review_ids = {}
    for who in (patient, acknowledged_patient):
        async with db.uow.transaction() as tx:
            outcome = await reviews.open_or_join(
                tx, request, patient_id=who, rule_version=RULES.version, source_kind="side_effect", source_id=uuid.uuid4(), now=T0
            )
            review_ids[who] = outcome.review_id
    async with db.uow.transaction() as tx:
        await reviews.acknowledge(tx, review_ids[acknowledged_patient], clinician_id="dr-lee", now=T0 + timedelta(hours=1))

    clock = Clock(T0 + timedelta(hours=23, minutes=59))
    assert await db.loop(clock).tick() == 0
    clock.now = T0 + timedelta(hours=24)
    assert await db.loop(clock).tick() == 1, "only the unacknowledged review's timer was pending"
    assert await db.loop(clock).tick() == 0
    [review] = await db.reviews_of(patient)
    assert (review.priority, review.priority_rank, review.status) == ("high", 2, "open")
    assert review.overdue_at == clock.now
    assert await db.outbox_types(patient) == ["ClinicianReviewOpened", "ClinicianReviewOverdue"]
    [acknowledged] = await db.reviews_of(acknowledged_patient)
    assert acknowledged.priority == "routine"
    async with db.uow.sessions() as s:
        pending = await s.execute(select(func.count()).select_from(timers.timers).where(timers.timers.c.fired_at.is_(None), timers.timers.c.cancelled_at.is_(None), timers.timers.c.subject_id.in_(review_ids.values())))
        assert pending.scalar_one() == 0
    await db.engine.dispose()
