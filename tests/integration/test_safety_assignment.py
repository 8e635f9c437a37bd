"""Reviews assigned and escalated to people, against real PostgreSQL with an injected clock (issue #24):
the prescriber first, on-call when the prescriber is away or no visit can be booked, then on-call and the
clinical lead paged once each when nobody acknowledges, and each step one ClinicianReviewAssigned."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from carecoord_contracts.common import ReviewPriority
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_safety import assignment, reach, reviews, rota, rules, sessions, timers
from carecoord_safety.models import care_relations, clinician_reviews, jurisdictions, messaging
from carecoord_shared.auth.care import replace_care_team
from carecoord_shared.errors import RuleViolation
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.services import built

definition = built("safety")
RULES = rules.load()
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
URGENT = rules.ReviewRequest("side_effect", ReviewPriority.urgent, timedelta(hours=1), True, ("x",), ("r1",))
LEAD_AFTER = timedelta(minutes=30)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def uow(stack: Stack) -> AsyncIterator[UnitOfWork]:
    url = await scratch_database(stack, "safety_assignment", "safety")
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    engine = create_engine(url)
    yield UnitOfWork(create_sessions(engine), messaging, "safety")
    await engine.dispose()


async def _patient(uow: UnitOfWork, *, prescriber: str | None = "dr-prescriber", state: str = "TX") -> uuid.UUID:
    patient = uuid.uuid4()
    async with uow.transaction() as tx:
        await tx.session.execute(insert(jurisdictions).values(patient_id=patient, state_of_residence=state))
        await replace_care_team(tx.session, care_relations, patient, prescriber, "th-therapist")
    return patient


async def _shift(uow: UnitOfWork, role: str, who: str, state: str = "TX") -> None:
    async with uow.transaction() as tx:
        await rota.add_shift(
            tx,
            state=state,
            role=role,
            clinician_id=who,
            starts_at=T0 - timedelta(hours=1),
            ends_at=T0 + timedelta(hours=12),
            created_by="operator",
        )


async def _open(uow: UnitOfWork, patient: uuid.UUID, now: datetime = T0) -> uuid.UUID:
    async with uow.transaction() as tx:
        outcome = await reviews.open_or_join(
            tx, URGENT, patient_id=patient, rule_version=RULES.version, source_kind="side_effect",
            source_id=uuid.uuid4(), now=now,
        )  # fmt: skip
    return outcome.review_id


async def _assignments(uow: UnitOfWork, patient: uuid.UUID) -> list[tuple[Any, ...]]:
    async with uow.sessions() as s:
        rows = await s.execute(
            select(messaging.outbox.c.envelope)
            .where(messaging.outbox.c.key == str(patient), messaging.outbox.c.event_type == "ClinicianReviewAssigned")
            .order_by(messaging.outbox.c.id)
        )
        return [(p["assignee_id"], p["basis"], p["escalation_level"]) for p in (e["payload"] for e in rows.scalars())]


def _loop(uow: UnitOfWork, clock: Clock) -> timers.TimerLoop:
    return timers.TimerLoop(uow, sessions.timer_actions(RULES, LEAD_AFTER), clock=clock)


async def test_an_unacknowledged_urgent_review_pages_on_call_then_the_lead_once_each(uow: UnitOfWork) -> None:
    patient = await _patient(uow)
    await _shift(uow, "on_call", "dr-on-call")
    await _shift(uow, "clinical_lead", "dr-lead")
    review_id = await _open(uow, patient)
    assert await _assignments(uow, patient) == [("dr-prescriber", "prescriber", 0)]

    clock = Clock(T0 + timedelta(minutes=59))
    assert await _loop(uow, clock).tick() == 0
    clock.now = T0 + timedelta(hours=1)
    assert await _loop(uow, clock).tick() == 1
    assert await _loop(uow, clock).tick() == 0, "the lead's timer is not due yet"
    clock.now += LEAD_AFTER
    assert await _loop(uow, clock).tick() == 1
    clock.now += timedelta(hours=6)
    assert await _loop(uow, clock).tick() == 0, "nothing above the lead"
    assert await _assignments(uow, patient) == [
        ("dr-prescriber", "prescriber", 0),
        ("dr-on-call", "on_call", 1),
        ("dr-lead", "clinical_lead", 2),
    ]
    async with uow.sessions() as s:
        review = (await s.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))).one()
    assert (review.assignee_id, review.assignment_basis, review.escalation_level) == ("dr-lead", "clinical_lead", 2)


async def test_acknowledging_after_on_call_was_paged_stops_the_lead_page(uow: UnitOfWork) -> None:
    patient = await _patient(uow)
    await _shift(uow, "on_call", "dr-on-call")
    await _shift(uow, "clinical_lead", "dr-lead")
    review_id = await _open(uow, patient)
    clock = Clock(T0 + timedelta(hours=1))
    assert await _loop(uow, clock).tick() == 1
    async with uow.transaction() as tx:
        await reviews.acknowledge(tx, review_id, clinician_id="dr-on-call", now=clock.now + timedelta(minutes=5))
    clock.now += timedelta(hours=2)
    assert await _loop(uow, clock).tick() == 0
    assert [a[1] for a in await _assignments(uow, patient)] == ["prescriber", "on_call"]


async def test_a_prescriber_away_until_the_review_is_due_is_passed_over_for_on_call(uow: UnitOfWork) -> None:
    patient = await _patient(uow)
    await _shift(uow, "on_call", "dr-on-call")
    async with uow.transaction() as tx:
        await rota.add_absence(
            tx, clinician_id="dr-prescriber", starts_at=T0 - timedelta(days=1), ends_at=T0 + timedelta(days=3),
            created_by="dr-prescriber",
        )  # fmt: skip
    await _open(uow, patient)
    assert await _assignments(uow, patient) == [("dr-on-call", "on_call", 0)]


async def test_no_visit_before_it_is_due_gives_the_review_to_on_call(uow: UnitOfWork) -> None:
    patient = await _patient(uow)
    review_id = await _open(uow, patient)
    await _shift(uow, "on_call", "dr-on-call")
    for _ in range(2):  # a redelivered ReviewAppointmentUnavailable changes nothing more
        async with uow.transaction() as tx:
            await assignment.unbookable(tx, review_id, patient, now=T0 + timedelta(minutes=1))
    assert await _assignments(uow, patient) == [("dr-prescriber", "prescriber", 0), ("dr-on-call", "on_call", 0)]


async def test_no_visit_for_a_review_named_under_another_patient_changes_nothing(uow: UnitOfWork) -> None:
    patient = await _patient(uow)
    review_id = await _open(uow, patient)
    await _shift(uow, "on_call", "dr-on-call")
    other = await _patient(uow)
    async with uow.transaction() as tx:
        assert not await assignment.unbookable(tx, review_id, other, now=T0 + timedelta(minutes=1))
    assert await _assignments(uow, patient) == [("dr-prescriber", "prescriber", 0)]


async def test_nobody_to_assign_is_said_once_and_a_reassignment_keeps_the_level(uow: UnitOfWork) -> None:
    patient = await _patient(uow, prescriber=None)
    review_id = await _open(uow, patient)
    async with uow.transaction() as tx:
        await assignment.reassign(tx, review_id, "dr-cover", now=T0 + timedelta(minutes=2))
        await assignment.reassign(tx, review_id, "dr-cover", now=T0 + timedelta(minutes=3))
    assert await _assignments(uow, patient) == [(None, "unassigned", 0), ("dr-cover", "reassigned", 0)]
    async with uow.sessions() as s:
        basis = await reach.assignee_basis(s, patient, "dr-cover", "TX")
    assert basis == "assigned:reassigned"


async def test_the_rota_refuses_a_second_on_call_for_the_same_hours(uow: UnitOfWork) -> None:
    await _shift(uow, "on_call", "dr-on-call")
    await _shift(uow, "clinical_lead", "dr-lead")  # another role: allowed
    with pytest.raises(RuleViolation, match="dr-on-call is already on_call in TX"):
        await _shift(uow, "on_call", "dr-other")
    await _shift(uow, "on_call", "dr-other", state="WA")


async def test_on_call_now_reaches_the_states_patients_and_nobody_else_does(uow: UnitOfWork) -> None:
    now = datetime.now(UTC)  # the access check reads the wall clock, as a request does
    async with uow.transaction() as tx:
        await rota.add_shift(
            tx, state="CO", role="on_call", clinician_id="dr-tonight", starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=1), created_by="operator",
        )  # fmt: skip
    async with uow.sessions() as s:
        assert await reach.on_call_basis(s, uuid.uuid4(), "dr-tonight", "CO") == "on_call"
        assert await reach.on_call_basis(s, uuid.uuid4(), "dr-tonight", "TX") is None
        assert await reach.on_call_basis(s, uuid.uuid4(), "dr-someone", "CO") is None
