"""Scheduling's reactions to the care pathway through its own handlers (tests/service_harness.py: no
Kafka, real PostgreSQL): the dosing course a plan's activation books, the course waiting for the
patient's location, a hold and its resumption, discontinuation, eligibility decisions in sequence,
and redelivery changing nothing. tests/e2e/test_scheduling.py keeps the same flows across services.

Each test registers its own patients in its own state, with clinicians licensed there only.
"""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select

from carecoord_contracts.common import EligibilityOutcome
from carecoord_contracts.dosing import (
    TreatmentPlanActivated,
    TreatmentPlanCreated,
    TreatmentPlanDiscontinued,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_contracts.intake import EligibilityDetermined, PatientRegistered
from carecoord_devstack.stack import Stack
from carecoord_scheduling.domain.policy import POLICY
from carecoord_scheduling.models import appointments, plans
from carecoord_shared.messaging.consumer import Outcome
from tests.service_harness import ServiceHarness

ZONE = "America/Boise"
ALL_DAY = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
COURSE_ROLES = ("psychiatric_clinician", "therapist")


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_courses_it") as harness:
        yield harness


async def clinicians_in(s: ServiceHarness, state: str, roles: tuple[str, ...] = COURSE_ROLES) -> None:
    for role in roles:
        clinician_id = f"dr-{uuid.uuid4().hex[:10]}"
        response = await s.http.put(
            f"/v1/clinicians/{clinician_id}",
            json={"role": role, "time_zone": ZONE, "licensed_states": [state], "weekly_availability": ALL_DAY},
        )
        assert response.status_code == 200, response.text


async def register(s: ServiceHarness, patient: uuid.UUID, state: str) -> None:
    await s.deliver(PatientRegistered(state_of_residence=state, time_zone=ZONE), patient_id=patient, producer="intake")


async def active_plan(
    s: ServiceHarness, patient: uuid.UUID, sessions: int, cadence_days: int | None = None
) -> uuid.UUID:
    plan_id = uuid.uuid4()
    created = TreatmentPlanCreated(
        plan_id=plan_id,
        starting_dose_mg=100,
        max_dose_mg=300,
        max_step_mg=50,
        planned_sessions=sessions,
        cadence_days=cadence_days,
    )
    for event in (created, TreatmentPlanActivated(plan_id=plan_id)):
        await s.deliver(event, patient_id=patient, producer="dosing")
    return plan_id


def decision(outcome: EligibilityOutcome, state: str, sequence: int | None) -> EligibilityDetermined:
    return EligibilityDetermined(
        decision_id=uuid.uuid4(),
        outcome=outcome,
        reasons=["x"],
        rule_version="test",
        state_of_residence=state,
        time_zone=ZONE,
        sequence=sequence,
    )


async def appointments_of(s: ServiceHarness, patient: uuid.UUID) -> list[Any]:
    query = select(appointments).where(appointments.c.patient_id == patient).order_by(appointments.c.starts_at)
    return await s.rows(query)


def live(rows: list[Any], kind: str | None = None) -> list[Any]:
    return [r for r in rows if r.status == "booked" and (kind is None or r.appointment_type == kind)]


def kinds(rows: list[Any]) -> Counter[str]:
    return Counter(r.appointment_type for r in rows)


def in_patient_day(row: Any) -> bool:
    start, end = row.starts_at.astimezone(ZoneInfo(ZONE)), row.ends_at.astimezone(ZoneInfo(ZONE))
    minutes = start.hour * 60 + start.minute
    return bool(
        start.date() == end.date()
        and minutes >= POLICY.patient_day_start_minute
        and end.hour * 60 + end.minute <= POLICY.patient_day_end_minute
    )


# --- the course ----------------------------------------------------------------------


async def test_activation_books_preparation_then_weekly_dosing_each_with_integration_after(
    scheduling: ServiceHarness,
) -> None:
    state, patient = "OR", uuid.uuid4()
    await clinicians_in(scheduling, state)
    await register(scheduling, patient, state)
    plan_id = await active_plan(scheduling, patient, sessions=3)  # no cadence named: weekly
    rows = await appointments_of(scheduling, patient)
    assert kinds(rows) == {"preparation": 1, "dosing_session": 3, "integration": 3}
    assert all(r.plan_id == plan_id and r.status == "booked" and in_patient_day(r) for r in rows)
    [prep] = [r for r in rows if r.appointment_type == "preparation"]
    dosing = sorted((r for r in rows if r.appointment_type == "dosing_session"), key=lambda r: r.starts_at)
    integration = {r.course_session: r for r in rows if r.appointment_type == "integration"}
    assert [r.course_session for r in dosing] == [1, 2, 3] and prep.course_session is None
    assert dosing[0].starts_at >= prep.ends_at + POLICY.first_dosing_after_preparation
    for a, b in itertools.pairwise(dosing):
        assert timedelta(days=7) <= b.starts_at - a.starts_at < timedelta(days=8), "weekly by default"
    for d in dosing:
        after = integration[d.course_session].starts_at - d.ends_at
        assert POLICY.integration_after_dosing <= after < POLICY.integration_after_dosing + timedelta(days=1)
    [plan] = await scheduling.rows(select(plans).where(plans.c.plan_id == plan_id))
    assert (plan.status, plan.cadence_days) == ("active", 7)
    booked = await scheduling.emitted("AppointmentBooked", patient_id=patient)
    assert Counter(b["appointment_type"] for b in booked) == {"preparation": 1, "dosing_session": 3, "integration": 3}


async def test_a_plans_cadence_spaces_the_dosing_sessions(scheduling: ServiceHarness) -> None:
    state, patient = "NV", uuid.uuid4()
    await clinicians_in(scheduling, state)
    await register(scheduling, patient, state)
    await active_plan(scheduling, patient, sessions=2, cadence_days=3)
    first, second = (r.starts_at for r in live(await appointments_of(scheduling, patient), "dosing_session"))
    assert timedelta(days=3) <= second - first < timedelta(days=4)


async def test_a_course_waits_for_the_patients_location_and_discontinuing_cancels_what_remains(
    scheduling: ServiceHarness,
) -> None:
    state, patient = "ID", uuid.uuid4()
    await clinicians_in(scheduling, state)
    plan_id = await active_plan(scheduling, patient, sessions=3)
    assert await appointments_of(scheduling, patient) == [], "nowhere to book before intake says where they live"

    await register(scheduling, patient, state)
    assert kinds(await appointments_of(scheduling, patient)) == {
        "preparation": 1,
        "dosing_session": 3,
        "integration": 3,
    }

    discontinued = TreatmentPlanDiscontinued(plan_id=plan_id, reason="clinician_decision", decided_by="dr-lee")
    await scheduling.deliver(discontinued, patient_id=patient, producer="dosing")
    assert live(await appointments_of(scheduling, patient)) == []
    cancelled = await scheduling.emitted("AppointmentCancelled", patient_id=patient)
    assert len(cancelled) == 7 and {c["reason"] for c in cancelled} == {"plan_discontinued"}
    [plan] = await scheduling.rows(select(plans.c.status).where(plans.c.plan_id == plan_id))
    assert plan.status == "discontinued"


async def test_a_hold_cancels_only_that_patients_dosing_and_resuming_rebooks_each_session(
    scheduling: ServiceHarness,
) -> None:
    state, patient, other = "UT", uuid.uuid4(), uuid.uuid4()
    await clinicians_in(scheduling, state)
    course = {"preparation": 1, "dosing_session": 4, "integration": 4}
    plan_ids = {}
    for p in (patient, other):
        await register(scheduling, p, state)
        plan_ids[p] = await active_plan(scheduling, p, sessions=4)
        assert kinds(live(await appointments_of(scheduling, p))) == course
    before = {r.appointment_id for r in live(await appointments_of(scheduling, patient), "dosing_session")}

    paused = TreatmentPlanPaused(plan_id=plan_ids[patient], hold_ids=[uuid.uuid4()], reason="severe_side_effect")
    await scheduling.deliver(paused, patient_id=patient, producer="dosing")
    held = await appointments_of(scheduling, patient)
    assert kinds(live(held)) == {"preparation": 1, "integration": 4}, "therapy stays"
    assert {r.cancel_reason for r in held if r.status == "cancelled"} == {"treatment_hold"}
    cancelled = await scheduling.emitted("AppointmentCancelled", patient_id=patient)
    assert sorted(uuid.UUID(c["appointment_id"]) for c in cancelled) == sorted(before)
    assert kinds(live(await appointments_of(scheduling, other))) == course, "the other patient keeps every session"

    await scheduling.deliver(TreatmentPlanResumed(plan_id=plan_ids[patient]), patient_id=patient, producer="dosing")
    rows = await appointments_of(scheduling, patient)
    sessions = live(rows, "dosing_session")
    assert len(sessions) == 4 and not before & {r.appointment_id for r in sessions}, "new bookings, not revived ones"
    assert sorted(r.course_session for r in sessions) == [1, 2, 3, 4]
    by_id = {r.appointment_id: r for r in rows}
    for old in (by_id[i] for i in before):
        new = by_id[old.rebooked_as]
        assert new.course_session == old.course_session and new.starts_at >= old.starts_at
    [plan] = await scheduling.rows(select(plans.c.status).where(plans.c.plan_id == plan_ids[patient]))
    assert plan.status == "active"


async def test_a_hold_cancels_the_remaining_dosing_sessions_in_one_statement_with_an_event_each(
    scheduling: ServiceHarness,
) -> None:
    state, patient = "WY", uuid.uuid4()
    await clinicians_in(scheduling, state)
    await register(scheduling, patient, state)
    plan_id = await active_plan(scheduling, patient, sessions=4)
    sessions = sorted(live(await appointments_of(scheduling, patient), "dosing_session"), key=lambda r: r.starts_at)
    assert len(sessions) == 4

    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = scheduling.app.runtime.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", note)
    try:
        paused = TreatmentPlanPaused(plan_id=plan_id, hold_ids=[uuid.uuid4()], reason="severe_side_effect")
        await scheduling.deliver(paused, patient_id=patient, producer="dosing")
    finally:
        sa_event.remove(engine, "before_cursor_execute", note)
    assert len([s for s in sent if s.startswith("UPDATE appointments")]) == 1
    cancelled = await scheduling.emitted("AppointmentCancelled", patient_id=patient)
    assert [uuid.UUID(c["appointment_id"]) for c in cancelled] == [r.appointment_id for r in sessions]
    assert {c["reason"] for c in cancelled} == {"treatment_hold"}
    after = {r.appointment_id: r for r in await appointments_of(scheduling, patient)}
    assert all(
        (after[r.appointment_id].status, after[r.appointment_id].cancel_reason) == ("cancelled", "treatment_hold")
        for r in sessions
    )
    assert kinds(live(list(after.values()))) == {"preparation": 1, "integration": 4}


# --- eligibility ---------------------------------------------------------------------


async def test_an_eligible_patient_gets_one_initial_evaluation_and_a_waiting_course(scheduling: ServiceHarness) -> None:
    state, patient = "MT", uuid.uuid4()
    await clinicians_in(scheduling, state)
    plan_id = await active_plan(scheduling, patient, sessions=1)
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 1), patient_id=patient, producer="intake")
    rows = await appointments_of(scheduling, patient)
    assert kinds(rows) == {"initial_evaluation": 1, "preparation": 1, "dosing_session": 1, "integration": 1}
    [evaluation] = [r for r in rows if r.appointment_type == "initial_evaluation"]
    assert evaluation.plan_id is None and evaluation.starts_at >= datetime.now(evaluation.starts_at.tzinfo)
    assert {r.plan_id for r in rows if r.appointment_type != "initial_evaluation"} == {plan_id}
    # A later eligible decision books no second evaluation.
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 2), patient_id=patient, producer="intake")
    assert kinds(await appointments_of(scheduling, patient))["initial_evaluation"] == 1


async def test_an_ineligible_decision_cancels_evaluation_and_dosing_keeps_therapy_and_books_no_course(
    scheduling: ServiceHarness,
) -> None:
    state, patient = "ND", uuid.uuid4()
    await clinicians_in(scheduling, state)
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 1), patient_id=patient, producer="intake")
    await active_plan(scheduling, patient, sessions=2)
    assert kinds(live(await appointments_of(scheduling, patient))) == {
        "initial_evaluation": 1,
        "preparation": 1,
        "dosing_session": 2,
        "integration": 2,
    }
    await scheduling.deliver(decision(EligibilityOutcome.ineligible, state, 2), patient_id=patient, producer="intake")
    rows = await appointments_of(scheduling, patient)
    assert kinds(live(rows)) == {"preparation": 1, "integration": 2}, "therapy stays"
    assert {r.cancel_reason for r in rows if r.status == "cancelled"} == {"eligibility_withdrawn"}
    cancelled = await scheduling.emitted("AppointmentCancelled", patient_id=patient)
    assert Counter(c["appointment_type"] for c in cancelled) == {"initial_evaluation": 1, "dosing_session": 2}

    # Ineligible: a new plan's activation books no course.
    await active_plan(scheduling, patient, sessions=2)
    assert len(await appointments_of(scheduling, patient)) == len(rows)


async def test_an_older_decision_arriving_late_changes_nothing_and_needs_review_books_nothing(
    scheduling: ServiceHarness,
) -> None:
    state, patient = "NE", uuid.uuid4()
    await clinicians_in(scheduling, state)
    await scheduling.deliver(decision(EligibilityOutcome.needs_review, state, 1), patient_id=patient, producer="intake")
    assert await appointments_of(scheduling, patient) == [], "needs_review books nothing"
    await scheduling.deliver(decision(EligibilityOutcome.ineligible, state, 3), patient_id=patient, producer="intake")
    # Decision 2 was made before 3 (which superseded it): arriving after it, it books nothing.
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 2), patient_id=patient, producer="intake")
    # The same number again is no newer either.
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 3), patient_id=patient, producer="intake")
    assert await appointments_of(scheduling, patient) == []
    await scheduling.deliver(decision(EligibilityOutcome.eligible, state, 4), patient_id=patient, producer="intake")
    assert kinds(await appointments_of(scheduling, patient)) == {"initial_evaluation": 1}


# --- redelivery ----------------------------------------------------------------------


async def test_redelivered_events_book_and_cancel_once(scheduling: ServiceHarness) -> None:
    state, patient = "NM", uuid.uuid4()
    await clinicians_in(scheduling, state)
    plan_id = uuid.uuid4()
    events = [
        (decision(EligibilityOutcome.eligible, state, None), "intake"),
        (
            TreatmentPlanCreated(
                plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=2
            ),
            "dosing",
        ),
        (TreatmentPlanActivated(plan_id=plan_id), "dosing"),
        (TreatmentPlanPaused(plan_id=plan_id, hold_ids=[uuid.uuid4()], reason="severe_side_effect"), "dosing"),
    ]
    for event, producer in events:
        envelope = await scheduling.deliver(event, patient_id=patient, producer=producer)
        await scheduling.deliver_envelope(envelope, expect=Outcome.duplicate)  # the same event id again
    emitted = await scheduling.emitted_envelopes(patient_id=patient)
    # The evaluation and the preparation each set a member of the care team, once however often redelivered.
    assert [e["payload"]["reason"] for e in emitted if e["type"] == "CareTeamChanged"] == [
        "initial_evaluation_booked",
        "preparation_booked",
    ]
    sent = Counter((e["type"], e["payload"]["appointment_type"]) for e in emitted if e["type"] != "CareTeamChanged")
    assert sent == {
        ("AppointmentBooked", "initial_evaluation"): 1,
        ("AppointmentBooked", "preparation"): 1,
        ("AppointmentBooked", "dosing_session"): 2,
        ("AppointmentBooked", "integration"): 2,
        ("AppointmentCancelled", "dosing_session"): 2,
    }
