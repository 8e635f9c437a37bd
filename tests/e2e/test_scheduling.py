"""Scheduling with every service as its own process on real Kafka and PostgreSQL:
no double booking under concurrency, the course held and rebooked around a
safety hold, an urgent review before its due time, and redelivery changing nothing.

Intake is not needed: its events are published as intake would publish them.
Each test licenses its own clinicians in its own state, so tests do not share slots.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from carecoord_contracts import Envelope, Event
from carecoord_contracts.common import EligibilityOutcome, ReviewPriority
from carecoord_contracts.dosing import (
    TreatmentPlanActivated,
    TreatmentPlanCreated,
    TreatmentPlanDiscontinued,
    TreatmentPlanPaused,
)
from carecoord_contracts.intake import EligibilityDetermined, PatientRegistered
from carecoord_contracts.safety import ClinicianReviewOpened
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, group_caught_up, publish_envelope, publish_event

pytestmark = pytest.mark.e2e

ALL_WEEK = journeys.ALL_WEEK


def _scheduling(stack: Stack, path: str) -> str:
    return journeys.url(stack, "scheduling", path)


_clinician = journeys.clinician


async def _publish_twice(stack: Stack, topic: str, event: Event, patient: uuid.UUID, producer: str) -> Envelope:
    envelope = await publish_event(stack.kafka.bootstrap, topic, event, patient, producer=producer)
    await publish_envelope(stack.kafka.bootstrap, topic, envelope)  # the same event id again
    return envelope


async def _register(stack: Stack, patient: uuid.UUID, state: str, time_zone: str) -> None:
    await publish_event(
        stack.kafka.bootstrap,
        "intake.patients",
        PatientRegistered(state_of_residence=state, time_zone=time_zone),
        patient,
        producer="intake",
    )
    await eventually(
        lambda: _received(stack, patient, "PatientRegistered"), what="scheduling knows where the patient lives"
    )


async def _received(stack: Stack, patient: uuid.UUID, event_type: str) -> bool:
    return event_type in await journeys.received(stack, "scheduling", patient)


async def _schedule(stack: Stack, patient: uuid.UUID, include_all: bool = False) -> list[dict[str, Any]]:
    return await journeys.appointments(stack, patient, include_all)


def _kinds(appointments: list[dict[str, Any]]) -> Counter[str]:
    return Counter(a["appointment_type"] for a in appointments)


async def _schedule_with(stack: Stack, patient: uuid.UUID, **wanted: int) -> list[dict[str, Any]] | None:
    """The patient's upcoming schedule once it holds exactly these counts of these types."""
    schedule = await _schedule(stack, patient)
    kinds = _kinds(schedule)
    return schedule if all(kinds[k] == n for k, n in wanted.items()) else None


async def _caught_up(stack: Stack, *topics: str) -> bool:
    return all([await group_caught_up(stack.kafka.bootstrap, "carecoord.scheduling", t) for t in topics])


async def test_twenty_concurrent_requests_for_one_slot_book_it_once(services: Stack) -> None:
    clinician = await _clinician(services, "psychiatric_clinician", "VT", "America/New_York")
    patients = [uuid.uuid4() for _ in range(20)]
    await asyncio.gather(*(_register(services, p, "VT", "America/New_York") for p in patients))

    tomorrow_noon = datetime.now(ZoneInfo("America/New_York")).replace(
        hour=12, minute=0, second=0, microsecond=0
    ) + timedelta(days=1)
    async with api_client(timeout=30) as http:
        slots = await http.get(
            _scheduling(services, f"/v1/patients/{patients[0]}/open-slots"),
            params={
                "appointment_type": "follow_up",
                "not_before": tomorrow_noon.isoformat(),
                "clinician_id": clinician,
                "limit": 1,
            },
        )
        assert slots.status_code == 200, slots.text
        [slot] = slots.json()
        assert slot["clinician_id"] == clinician
        assert datetime.fromisoformat(slot["starts_at_patient_local"]).hour == 12

        responses = await asyncio.gather(
            *(
                http.post(
                    _scheduling(services, "/v1/appointments"),
                    json={
                        "patient_id": str(p),
                        "clinician_id": clinician,
                        "appointment_type": "follow_up",
                        "starts_at": slot["starts_at"],
                    },
                )
                for p in patients
            )
        )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 19}, [r.text for r in responses if r.status_code not in (201, 409)]
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["code"] == "rule_violation"
        assert f"clinician {clinician} is already booked at" in refused.json()["detail"]

    conn = await asyncpg.connect(services.postgres.dsn("scheduling"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM appointments WHERE clinician_id = $1", clinician) == 1
    finally:
        await conn.close()


async def test_one_patient_asking_several_clinicians_for_the_same_time_at_once_gets_one(services: Stack) -> None:
    clinicians = [await _clinician(services, "psychiatric_clinician", "RI", "America/New_York") for _ in range(5)]
    patient = uuid.uuid4()
    await _register(services, patient, "RI", "America/New_York")
    starts_at = datetime.now(ZoneInfo("America/New_York")).replace(
        hour=15, minute=0, second=0, microsecond=0
    ) + timedelta(days=1)
    async with api_client(timeout=30) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    _scheduling(services, "/v1/appointments"),
                    json={
                        "patient_id": str(patient),
                        "clinician_id": c,
                        "appointment_type": "follow_up",
                        "starts_at": starts_at.isoformat(),
                    },
                )
                for c in clinicians
            )
        )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 4}, [r.text for r in responses]
    assert {r.json()["detail"] for r in responses if r.status_code == 409} == {
        "the patient already has an appointment at that time"
    }
    assert len(await _schedule(services, patient)) == 1


async def test_severe_report_holds_only_that_patients_dosing_books_a_review_and_resume_rebooks(services: Stack) -> None:
    state, zone = "OR", "America/Los_Angeles"
    for role in ("psychiatric_clinician", "psychiatric_clinician", "therapist"):
        await _clinician(services, role, state, zone)
    patient, other = uuid.uuid4(), uuid.uuid4()
    course = {"preparation": 1, "dosing_session": 6, "integration": 6}
    booked: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for p in (patient, other):
        await _register(services, p, state, zone)
        await journeys.active_plan(services, p)
        booked[p] = await eventually(lambda p=p: _schedule_with(services, p, **course), what="the course booked")
    before = {a["appointment_id"] for a in booked[patient] if a["appointment_type"] == "dosing_session"}
    for a in booked[patient]:
        local = datetime.fromisoformat(a["starts_at_patient_local"])
        assert local.hour >= 8 and local + timedelta(minutes=1) <= local.replace(hour=21, minute=0), (
            "within the patient's day"
        )

    outcome = (await journeys.report(services, patient, symptoms=["nausea"], grade=3)).json()
    assert outcome["hold_requested"], outcome
    held = await eventually(
        lambda: _schedule_with(services, patient, preparation=1, dosing_session=0, integration=6, urgent_review=1),
        what="dosing sessions cancelled and a review booked",
    )
    [review_visit] = [a for a in held if a["appointment_type"] == "urgent_review"]
    [review] = await journeys.reviews(services, patient)
    assert review_visit["review_id"] == review["review_id"] == outcome["review_id"]
    assert datetime.fromisoformat(review_visit["ends_at"]) <= datetime.fromisoformat(review["due_at"])
    cancelled = await events_for(services.kafka.bootstrap, "scheduling.appointments", patient, "AppointmentCancelled")
    assert sorted(e["payload"]["appointment_id"] for e in cancelled) == sorted(before)
    assert {e["payload"]["reason"] for e in cancelled} == {"treatment_hold"}
    assert _kinds(await _schedule(services, other)) == course, "the other patient keeps every session"

    async with api_client(timeout=10) as http:
        resolved = await http.post(
            journeys.url(services, "safety", f"/v1/reviews/{outcome['review_id']}/resolve"),
            json={"clinician_id": "dr-lee", "decision": "resume"},
        )
    assert resolved.status_code == 200, resolved.text
    rebooked = await eventually(
        lambda: _schedule_with(services, patient, dosing_session=6, integration=6), what="held sessions rebooked"
    )
    sessions = [a for a in rebooked if a["appointment_type"] == "dosing_session"]
    assert not before & {a["appointment_id"] for a in sessions}, "new bookings, not revived cancelled ones"
    assert sorted(a["course_session"] for a in sessions) == [1, 2, 3, 4, 5, 6]
    assert _kinds(await _schedule(services, other)) == course


async def test_redelivered_events_book_and_cancel_once(services: Stack) -> None:
    state, zone = "NM", "America/Denver"
    await _clinician(services, "psychiatric_clinician", state, zone)
    await _clinician(services, "therapist", state, zone)
    patient = uuid.uuid4()
    eligible = EligibilityDetermined(
        decision_id=uuid.uuid4(),
        outcome=EligibilityOutcome.eligible,
        reasons=[],
        rule_version="test",
        state_of_residence=state,
        time_zone=zone,
    )
    await _publish_twice(services, "intake.screening", eligible, patient, "intake")
    await eventually(lambda: _schedule_with(services, patient, initial_evaluation=1), what="evaluation booked")

    plan_id = uuid.uuid4()
    created = TreatmentPlanCreated(
        plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=2, cadence_days=3
    )
    for event in (created, TreatmentPlanActivated(plan_id=plan_id)):
        await _publish_twice(services, "dosing.plans", event, patient, "dosing")
    course = await eventually(
        lambda: _schedule_with(services, patient, initial_evaluation=1, preparation=1, dosing_session=2, integration=2),
        what="course booked",
    )
    first, second = sorted(
        datetime.fromisoformat(a["starts_at"]) for a in course if a["appointment_type"] == "dosing_session"
    )
    assert second - first >= timedelta(days=3), "the plan's cadence"

    paused = TreatmentPlanPaused(plan_id=plan_id, hold_ids=[uuid.uuid4()], reason="severe_side_effect")
    await _publish_twice(services, "dosing.plans", paused, patient, "dosing")
    review = ClinicianReviewOpened(
        review_id=uuid.uuid4(),
        reason="severe_side_effect",
        priority=ReviewPriority.urgent,
        due_at=datetime.now(UTC) + timedelta(hours=4),
        triggers=["grade_3"],
        rule_version="test",
    )
    await _publish_twice(services, "safety.reviews", review, patient, "safety")
    await eventually(
        lambda: _schedule_with(services, patient, dosing_session=0, urgent_review=1), what="held and review booked"
    )
    await eventually(
        lambda: _caught_up(services, "intake.screening", "dosing.plans", "safety.reviews"),
        what="every delivery consumed",
    )

    sent = Counter(
        (e["type"], e["payload"]["appointment_type"])
        for e in await events_for(services.kafka.bootstrap, "scheduling.appointments", patient)
    )
    assert sent == {
        ("AppointmentBooked", "initial_evaluation"): 1,
        ("AppointmentBooked", "preparation"): 1,
        ("AppointmentBooked", "dosing_session"): 2,
        ("AppointmentBooked", "integration"): 2,
        ("AppointmentBooked", "urgent_review"): 1,
        ("AppointmentCancelled", "dosing_session"): 2,
    }


async def test_a_review_no_licensed_clinician_can_take_in_time_is_announced(services: Stack) -> None:
    patient = uuid.uuid4()
    await _register(services, patient, "WY", "America/Denver")  # no clinician is licensed in Wyoming
    review = ClinicianReviewOpened(
        review_id=uuid.uuid4(),
        reason="severe_side_effect",
        priority=ReviewPriority.urgent,
        due_at=datetime.now(UTC) + timedelta(hours=4),
        triggers=["grade_3"],
        rule_version="test",
    )
    await publish_event(services.kafka.bootstrap, "safety.reviews", review, patient, producer="safety")
    [unavailable] = await eventually(
        lambda: events_for(
            services.kafka.bootstrap, "scheduling.appointments", patient, "ReviewAppointmentUnavailable"
        ),
        what="ReviewAppointmentUnavailable published",
    )
    assert unavailable["payload"]["review_id"] == str(review.review_id)
    assert unavailable["payload"]["reason"] == "no_licensed_clinician_free"
    assert await _schedule(services, patient) == []


async def test_an_appointment_through_its_life_over_http(services: Stack) -> None:
    state, zone = "ME", "America/New_York"
    daytime = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]
    clinician = await _clinician(services, "psychiatric_clinician", state, zone, daytime)
    therapist = await _clinician(services, "therapist", state, zone, daytime)
    elsewhere = await _clinician(services, "psychiatric_clinician", "NH", zone, daytime)
    patient, later_patient = uuid.uuid4(), uuid.uuid4()
    for p in (patient, later_patient):
        await _register(services, p, state, zone)
    day_after = (datetime.now(ZoneInfo(zone)) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    at_ten, at_eleven, at_three_am = (day_after.replace(hour=h) for h in (10, 11, 3))

    async def book(who: uuid.UUID, clinician_id: str, starts_at: datetime, kind: str = "follow_up") -> httpx.Response:
        async with api_client(timeout=10) as http:
            return await http.post(
                _scheduling(services, "/v1/appointments"),
                json={
                    "patient_id": str(who),
                    "clinician_id": clinician_id,
                    "appointment_type": kind,
                    "starts_at": starts_at.isoformat(),
                },
            )

    async def act(appointment_id: str, action: str, body: dict[str, Any] | None = None) -> httpx.Response:
        async with api_client(timeout=10) as http:
            return await http.post(
                _scheduling(services, f"/v1/appointments/{appointment_id}/{action}"), json=body or {}
            )

    refusals = {
        "is held by a psychiatric_clinician, and": await book(patient, therapist, at_ten),
        "is not licensed in the patient's state (ME)": await book(patient, elsewhere, at_ten),
        "is not available for the whole of": await book(patient, clinician, at_three_am),
        "cannot start in the past": await book(patient, clinician, day_after - timedelta(days=5)),
    }
    for expected, response in refusals.items():
        assert response.status_code == 409 and expected in response.json()["detail"], response.text
    unknown = await book(uuid.uuid4(), clinician, at_ten)
    assert unknown.status_code == 409 and "does not know patient" in unknown.json()["detail"]
    invalid = await book(patient, clinician, at_ten.replace(tzinfo=None), kind="massage")
    assert invalid.status_code == 422, invalid.text
    assert {e["field"] for e in invalid.json()["errors"]} == {"appointment_type", "starts_at"}

    booked = await book(patient, clinician, at_ten)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["status"] == "booked"
    assert datetime.fromisoformat(appointment["starts_at_patient_local"]) == at_ten
    assert datetime.fromisoformat(appointment["ends_at"]) - datetime.fromisoformat(
        appointment["starts_at"]
    ) == timedelta(minutes=30)
    assert (await act(appointment["appointment_id"], "complete")).status_code == 409, "not started yet"

    moved = await act(appointment["appointment_id"], "reschedule", {"starts_at": at_eleven.isoformat()})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == at_eleven
    assert (await book(later_patient, clinician, at_eleven)).status_code == 409, "the moved-to slot is taken"
    assert (await book(later_patient, clinician, at_ten)).status_code == 201, "the moved-from slot is free again"

    cancelled = await act(appointment["appointment_id"], "cancel", {"reason": "patient_request"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert (await act(appointment["appointment_id"], "cancel")).status_code == 409
    assert await _schedule(services, patient) == []
    assert (await book(patient, clinician, at_eleven)).status_code == 201, "a cancelled appointment holds no slot"

    # Time off: nothing is offered in it, by booking or by search.
    async with api_client(timeout=10) as http:
        away = await http.post(
            _scheduling(services, f"/v1/clinicians/{clinician}/exceptions"),
            json={
                "starts_at": day_after.replace(hour=13).isoformat(),
                "ends_at": day_after.replace(hour=15).isoformat(),
                "reason": "training",
            },
        )
        assert away.status_code == 201, away.text
        offered = await http.get(
            _scheduling(services, f"/v1/patients/{later_patient}/open-slots"),
            params={
                "appointment_type": "follow_up",
                "clinician_id": clinician,
                "not_before": day_after.replace(hour=12).isoformat(),
                "limit": 3,
            },
        )
    assert [datetime.fromisoformat(s["starts_at_clinician_local"]).strftime("%H:%M") for s in offered.json()] == [
        "12:00",
        "12:30",
        "15:00",
    ]
    refused = await book(later_patient, clinician, day_after.replace(hour=13, minute=30))
    assert refused.status_code == 409 and "is away during" in refused.json()["detail"]

    # An appointment that has happened: move it into the past in the database, then mark it.
    [current] = await _schedule(services, patient)
    conn = await asyncpg.connect(services.postgres.dsn("scheduling"))
    try:
        await conn.execute(
            "UPDATE appointments SET starts_at = now() - interval '2 hours', ends_at = now() - interval '90 minutes' WHERE appointment_id = $1",
            uuid.UUID(current["appointment_id"]),
        )
    finally:
        await conn.close()
    completed = await act(current["appointment_id"], "complete")
    assert completed.status_code == 200 and completed.json()["status"] == "completed", completed.text
    assert (await act(current["appointment_id"], "no-show")).status_code == 409

    sent = await eventually(lambda: _events_of_types(services, patient, 5), what="the appointment events published")
    assert sent == [
        "AppointmentBooked",
        "AppointmentRescheduled",
        "AppointmentCancelled",
        "AppointmentBooked",
        "AppointmentCompleted",
    ]


async def _events_of_types(stack: Stack, patient: uuid.UUID, count: int) -> list[str] | None:
    types = [e["type"] for e in await events_for(stack.kafka.bootstrap, "scheduling.appointments", patient)]
    return types if len(types) >= count else None


async def test_a_course_waits_for_the_patients_location_and_discontinuing_cancels_what_remains(services: Stack) -> None:
    state, zone = "ID", "America/Boise"
    await _clinician(services, "psychiatric_clinician", state, zone)
    await _clinician(services, "therapist", state, zone)
    patient, plan_id = uuid.uuid4(), uuid.uuid4()
    created = TreatmentPlanCreated(
        plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=3
    )
    for event in (created, TreatmentPlanActivated(plan_id=plan_id)):
        await publish_event(services.kafka.bootstrap, "dosing.plans", event, patient, producer="dosing")
    await eventually(lambda: _caught_up(services, "dosing.plans"), what="activation consumed")
    assert await _schedule(services, patient) == [], "nowhere to book before intake says where the patient lives"

    await _register(services, patient, state, zone)
    course = await eventually(
        lambda: _schedule_with(services, patient, preparation=1, dosing_session=3, integration=3), what="course booked"
    )
    starts = sorted(datetime.fromisoformat(a["starts_at"]) for a in course if a["appointment_type"] == "dosing_session")
    assert all(b - a >= timedelta(days=7) for a, b in itertools.pairwise(starts)), "weekly by default"

    discontinued = TreatmentPlanDiscontinued(plan_id=plan_id, reason="clinician_decision", decided_by="dr-lee")
    await publish_event(services.kafka.bootstrap, "dosing.plans", discontinued, patient, producer="dosing")
    await eventually(lambda: _nothing_upcoming(services, patient), what="the rest of the course cancelled")
    cancelled = await events_for(services.kafka.bootstrap, "scheduling.appointments", patient, "AppointmentCancelled")
    assert len(cancelled) == 7 and {e["payload"]["reason"] for e in cancelled} == {"plan_discontinued"}


async def _nothing_upcoming(stack: Stack, patient: uuid.UUID) -> bool:
    return await _schedule(stack, patient) == []
