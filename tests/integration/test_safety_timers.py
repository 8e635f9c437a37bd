"""Durable timers against real PostgreSQL, with an injected clock (no sleeping for hours)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_contracts import Envelope
from carecoord_contracts.common import AppointmentType
from carecoord_contracts.dosing import DosingSessionAuthorised, DosingSessionRefused
from carecoord_contracts.patient_app import MoodCheckInSubmitted
from carecoord_contracts.scheduling import AppointmentBooked, AppointmentCancelled, AppointmentNoShow
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_safety import handlers, reviews, rules, sessions, timers
from carecoord_safety.models import clinician_reviews, messaging
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.services import built

definition = built("safety")

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
                select(messaging.outbox.c.event_type)
                .where(messaging.outbox.c.key == str(patient))
                .order_by(messaging.outbox.c.id)
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
    """Booked for T0 and authorised (dosed) at T0: the post-dose timers run from T0."""
    async with db.uow.transaction() as tx:
        await sessions.booked(tx, RULES, appointment_id=appointment, patient_id=patient, starts_at=T0, now=T0)
        await sessions.authorised(
            tx, RULES, appointment_id=appointment, patient_id=patient, authorisation_id=uuid.uuid4(), at=T0, now=T0
        )


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
    assert await second.outbox_types(patient) == ["CheckInMissed", "ClinicianReviewOpened", "ClinicianReviewAssigned"]
    for db in (second, third):
        await db.engine.dispose()


async def test_a_check_in_in_time_cancels_both_timers(db_url: str) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    db = SafetyDb(db_url)
    await _book(db, patient, appointment)
    async with db.uow.transaction() as tx:
        counted = await sessions.checked_in(
            tx, appointment_id=appointment, patient_id=patient, at=T0 + timedelta(hours=2), now=T0 + timedelta(hours=2)
        )
    assert counted
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
                tx,
                request,
                patient_id=who,
                rule_version=RULES.version,
                source_kind="side_effect",
                source_id=uuid.uuid4(),
                now=T0,
            )
            review_ids[who] = outcome.review_id
    async with db.uow.transaction() as tx:
        await reviews.acknowledge(
            tx, review_ids[acknowledged_patient], clinician_id="dr-lee", now=T0 + timedelta(hours=1)
        )

    clock = Clock(T0 + timedelta(hours=23, minutes=59))
    assert await db.loop(clock).tick() == 0
    clock.now = T0 + timedelta(hours=24)
    assert await db.loop(clock).tick() == 1, "only the unacknowledged review's timer was pending"
    assert await db.loop(clock).tick() == 0
    [review] = await db.reviews_of(patient)
    assert (review.priority, review.priority_rank, review.status) == ("high", 2, "open")
    assert review.overdue_at == clock.now
    # Nobody is on the rota here: the review was opened unassigned, and its escalation says nobody could be
    # paged either (level 1, unassigned: the operators' queue must find someone).
    assert await db.outbox_types(patient) == [
        "ClinicianReviewOpened",
        "ClinicianReviewAssigned",
        "ClinicianReviewOverdue",
        "ClinicianReviewAssigned",
    ]
    [acknowledged] = await db.reviews_of(acknowledged_patient)
    assert acknowledged.priority == "routine"
    async with db.uow.sessions() as s:
        pending = await s.execute(
            select(timers.timers.c.subject_id, timers.timers.c.kind).where(
                timers.timers.c.fired_at.is_(None),
                timers.timers.c.cancelled_at.is_(None),
                timers.timers.c.subject_id.in_(review_ids.values()),
            )
        )
        # What stays armed: the escalation to the clinical lead of the overdue review, nothing of the other.
        assert [tuple(row) for row in pending] == [(review_ids[patient], timers.LEAD_ESCALATION)]
    await db.engine.dispose()


# --- the post-dose timers run from the dose, whatever order the events arrive in (issue #20) ---


class Handlers:
    """Safety's event handlers as the service registers them, delivered to in-process (no broker)."""

    def __init__(self, clock: Clock) -> None:
        self.by_type: dict[str, list[Any]] = {}
        self.clock = clock
        handlers.register_with(RULES, clock)(self)  # type: ignore[arg-type]

    def on(self, event_cls: Any) -> Any:
        def register(fn: Any) -> Any:
            self.by_type.setdefault(event_cls.event_type, []).append(fn)
            return fn

        return register

    async def deliver(self, db: SafetyDb, event: Any, patient: uuid.UUID, occurred_at: datetime) -> None:
        """``event`` happened at ``occurred_at`` and reaches safety then (the clock moves to it)."""
        self.clock.now = max(self.clock.now, occurred_at)
        envelope = Envelope.wrap(event, patient_id=patient, producer="dosing", occurred_at=occurred_at)
        async with db.uow.transaction(cause=envelope) as tx:
            for handle in self.by_type.get(
                event.event_type, []
            ):  # a type safety does not handle is skipped, as the consumer does
                await handle(event, tx)


def booked(appointment: uuid.UUID, starts_at: datetime = T0) -> AppointmentBooked:
    return AppointmentBooked(
        appointment_id=appointment,
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-lee",
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=2),
    )


def authorised(appointment: uuid.UUID) -> DosingSessionAuthorised:
    return DosingSessionAuthorised(
        authorisation_id=uuid.uuid4(), plan_id=uuid.uuid4(), appointment_id=appointment, dose_mg=100
    )


def checkin(appointment: uuid.UUID, answered_at: datetime) -> MoodCheckInSubmitted:
    return MoodCheckInSubmitted(
        checkin_id=uuid.uuid4(), phq9_items=[1] * 8 + [0], answered_at=answered_at, appointment_id=appointment
    )


async def _fired_until(db: SafetyDb, clock: Clock, until: datetime) -> None:
    clock.now = until
    while await db.loop(clock).tick():
        pass


async def _missed(db: SafetyDb, patient: uuid.UUID) -> list[Any]:
    async with db.uow.sessions() as s:
        rows = await s.execute(
            select(messaging.outbox.c.envelope).where(
                messaging.outbox.c.key == str(patient), messaging.outbox.c.event_type == "CheckInMissed"
            )
        )
        return [envelope["payload"] for envelope in rows.scalars()]


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[tuple[SafetyDb, Handlers, Clock]]:
    db = SafetyDb(db_url)
    clock = Clock(T0 - timedelta(days=1))
    yield db, Handlers(clock), clock
    await db.engine.dispose()


async def test_a_dose_two_hours_late_is_chased_four_hours_after_the_dose_not_the_booking(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(db, authorised(appointment), patient, T0 + timedelta(hours=2))

    await _fired_until(db, clock, T0 + timedelta(hours=5, minutes=59))
    assert await db.outbox_types(patient) == [], "4 h after the booked start is only 3 h 59 after the dose"
    await _fired_until(db, clock, T0 + timedelta(hours=6))
    [missed] = await _missed(db, patient)
    assert missed["appointment_id"] == str(appointment) and missed["hours_since_start"] == 4
    await _fired_until(db, clock, T0 + timedelta(hours=9, minutes=59))
    assert await db.reviews_of(patient) == []
    await _fired_until(db, clock, T0 + timedelta(hours=10))
    [review] = await db.reviews_of(patient)
    assert review.reason == "missed_check_in"


async def test_the_authorisation_arriving_before_the_booking_still_starts_the_timers_once(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, authorised(appointment), patient, T0 + timedelta(hours=1))  # dosing.sessions overtook ...
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))  # ... scheduling.appointments
    await _fired_until(db, clock, T0 + timedelta(hours=4, minutes=59))
    assert await _missed(db, patient) == []
    await _fired_until(db, clock, T0 + timedelta(hours=9))
    assert len(await _missed(db, patient)) == 1
    assert [r.reason for r in await db.reviews_of(patient)] == ["missed_check_in"]


async def test_a_session_refused_at_150_95_is_never_chased(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    refusal = DosingSessionRefused(appointment_id=appointment, plan_id=uuid.uuid4(), reason="blood_pressure")
    await events.deliver(db, refusal, patient, T0 - timedelta(minutes=10))
    await _fired_until(db, clock, T0 + timedelta(days=1))
    assert await db.outbox_types(patient) == [] and await db.reviews_of(patient) == []


async def test_a_refusal_then_an_authorisation_after_a_repeat_reading_chases_from_the_authorisation(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    refusal = DosingSessionRefused(appointment_id=appointment, plan_id=uuid.uuid4(), reason="blood_pressure")
    await events.deliver(db, refusal, patient, T0)
    await events.deliver(db, authorised(appointment), patient, T0 + timedelta(minutes=30))
    await _fired_until(db, clock, T0 + timedelta(hours=4, minutes=29))
    assert await _missed(db, patient) == []
    await _fired_until(db, clock, T0 + timedelta(hours=4, minutes=30))
    assert len(await _missed(db, patient)) == 1


async def test_a_no_show_opens_the_rules_review_once_and_nothing_is_chased(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    no_show = AppointmentNoShow(
        appointment_id=appointment, appointment_type=AppointmentType.dosing_session, starts_at=T0
    )
    await events.deliver(db, no_show, patient, T0 + timedelta(hours=1))
    await events.deliver(db, no_show, patient, T0 + timedelta(hours=1, minutes=5))  # said twice (a new event id)
    [review] = await db.reviews_of(patient)
    assert (review.reason, review.priority, review.triggers, review.rule_version) == (
        "dosing_session_no_show",
        "high",
        ["dosing_session_no_show"],
        "2026.12.1",
    )
    assert review.due_at == T0 + timedelta(hours=25)
    await _fired_until(db, clock, T0 + timedelta(hours=9))
    assert await _missed(db, patient) == []
    assert [r.reason for r in await db.reviews_of(patient)] == ["dosing_session_no_show"]


async def test_a_no_show_or_a_cancellation_after_the_authorisation_keeps_chasing_the_dose(world: Any) -> None:
    db, events, clock = world
    no_show_patient, cancelled_patient = uuid.uuid4(), uuid.uuid4()
    for patient in (no_show_patient, cancelled_patient):
        appointment = uuid.uuid4()
        await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
        await events.deliver(db, authorised(appointment), patient, T0)
        if patient == no_show_patient:
            later = AppointmentNoShow(
                appointment_id=appointment, appointment_type=AppointmentType.dosing_session, starts_at=T0
            )
        else:
            later = AppointmentCancelled(
                appointment_id=appointment,
                appointment_type=AppointmentType.dosing_session,
                reason="treatment_hold",
                starts_at=T0,
            )
        await events.deliver(db, later, patient, T0 + timedelta(minutes=30))
    await _fired_until(db, clock, T0 + timedelta(hours=8))
    for patient in (no_show_patient, cancelled_patient):
        assert len(await _missed(db, patient)) == 1, "the tablet was released: the patient may have taken it"
    assert sorted(r.reason for r in await db.reviews_of(no_show_patient)) == [
        "dosing_session_no_show",
        "missed_check_in",
    ]
    [no_show_review] = [r for r in await db.reviews_of(no_show_patient) if r.reason == "dosing_session_no_show"]
    assert no_show_review.triggers == ["dosing_session_no_show_authorised"]


async def test_a_check_in_before_the_dose_does_not_count_as_the_post_dose_check_in(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(
        db, checkin(appointment, T0 - timedelta(seconds=1)), patient, T0 - timedelta(seconds=1)
    )  # pre-dose
    await events.deliver(db, authorised(appointment), patient, T0)
    await _fired_until(db, clock, T0 + timedelta(hours=8))
    assert len(await _missed(db, patient)) == 1
    assert [r.reason for r in await db.reviews_of(patient)] == ["missed_check_in"]
    assert "MoodCheckInRecorded" in await db.outbox_types(patient), "still recorded, as a mood observation"


async def test_a_check_in_at_the_dose_counts(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(db, authorised(appointment), patient, T0)
    await events.deliver(db, checkin(appointment, T0), patient, T0)
    await _fired_until(db, clock, T0 + timedelta(hours=9))
    assert await _missed(db, patient) == [] and await db.reviews_of(patient) == []


async def test_a_pre_dose_check_in_arriving_after_the_authorisation_does_not_cancel_the_timers(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(db, authorised(appointment), patient, T0)
    await events.deliver(
        db, checkin(appointment, T0 - timedelta(minutes=20)), patient, T0 + timedelta(minutes=5)
    )  # late upload
    await _fired_until(db, clock, T0 + timedelta(hours=4))
    assert len(await _missed(db, patient)) == 1


async def test_a_post_dose_check_in_arriving_before_the_authorisation_still_counts(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    # patient-app.reports overtook dosing.sessions: the check-in (answered 1 h after the dose) comes first
    await events.deliver(db, checkin(appointment, T0 + timedelta(hours=1)), patient, T0 + timedelta(hours=1))
    await events.deliver(db, authorised(appointment), patient, T0)
    await _fired_until(db, clock, T0 + timedelta(hours=9))
    assert await _missed(db, patient) == [] and await db.reviews_of(patient) == []


async def test_a_check_in_after_the_booked_start_but_before_a_late_dose_does_not_count(world: Any) -> None:
    db, events, clock = world
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(db, checkin(appointment, T0 + timedelta(hours=1)), patient, T0 + timedelta(hours=1))
    await events.deliver(db, authorised(appointment), patient, T0 + timedelta(hours=2))  # dosed two hours late
    await _fired_until(db, clock, T0 + timedelta(hours=6))
    assert len(await _missed(db, patient)) == 1


async def test_another_patients_check_in_naming_the_session_does_not_count(world: Any) -> None:
    db, events, clock = world
    patient, intruder, appointment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    await events.deliver(db, authorised(appointment), patient, T0)
    await events.deliver(db, checkin(appointment, T0 + timedelta(hours=1)), intruder, T0 + timedelta(hours=1))
    await _fired_until(db, clock, T0 + timedelta(hours=4))
    assert len(await _missed(db, patient)) == 1


async def test_an_event_keyed_by_another_patient_never_changes_the_session(world: Any) -> None:
    db, events, clock = world
    patient, other, appointment = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await events.deliver(db, booked(appointment), patient, T0 - timedelta(days=1))
    refusal = DosingSessionRefused(appointment_id=appointment, plan_id=uuid.uuid4(), reason="blood_pressure")
    await events.deliver(db, refusal, other, T0 - timedelta(minutes=5))
    no_show = AppointmentNoShow(
        appointment_id=appointment, appointment_type=AppointmentType.dosing_session, starts_at=T0
    )
    await events.deliver(db, no_show, other, T0 - timedelta(minutes=4))
    await events.deliver(db, authorised(appointment), patient, T0)
    assert await db.reviews_of(other) == []
    await _fired_until(db, clock, T0 + timedelta(hours=4))
    assert len(await _missed(db, patient)) == 1
