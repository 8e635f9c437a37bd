"""Scheduling's bookings through its own routes and handlers (tests/service_harness.py: no Kafka, real
PostgreSQL): an appointment through its life over HTTP, what may be booked with whom (role, licence,
availability, time off, the patient's day), no double booking, the clinician directory, and review
visits by priority. tests/e2e/test_scheduling.py keeps the same flows across running services.

Each test registers its own patients in its own state, with clinicians licensed there only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from carecoord_contracts.common import ReviewPriority
from carecoord_contracts.intake import PatientRegistered
from carecoord_contracts.safety import ClinicianReviewOpened
from carecoord_devstack.stack import Stack
from carecoord_scheduling.models import appointments
from carecoord_shared.messaging.consumer import Outcome
from tests.paging import all_pages, altered, assert_refused_cursor, first_cursor
from tests.service_harness import ServiceHarness

ZONE = "America/Chicago"
ALL_DAY = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]
DAYTIME = [{"weekday": d, "start": "08:00", "end": "20:00"} for d in range(7)]


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_booking_it") as harness:
        yield harness


async def put_clinician(
    s: ServiceHarness, role: str, states: list[str], windows: list[dict[str, Any]], zone: str = ZONE
) -> str:
    clinician_id = f"dr-{uuid.uuid4().hex[:10]}"
    response = await s.http.put(
        f"/v1/clinicians/{clinician_id}",
        json={"role": role, "time_zone": zone, "licensed_states": states, "weekly_availability": windows},
    )
    assert response.status_code == 200, response.text
    return clinician_id


async def register(s: ServiceHarness, state: str, zone: str = ZONE) -> uuid.UUID:
    patient = uuid.uuid4()
    await s.deliver(PatientRegistered(state_of_residence=state, time_zone=zone), patient_id=patient, producer="intake")
    return patient


async def book(
    s: ServiceHarness, patient: uuid.UUID, clinician: str, at: datetime, kind: str = "follow_up"
) -> httpx.Response:
    return await s.http.post(
        "/v1/appointments",
        json={
            "patient_id": str(patient),
            "clinician_id": clinician,
            "appointment_type": kind,
            "starts_at": at.isoformat(),
        },
    )


async def act(
    s: ServiceHarness, appointment_id: str, action: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await s.http.post(f"/v1/appointments/{appointment_id}/{action}", json=body or {})


async def schedule(s: ServiceHarness, patient: uuid.UUID, include_all: bool = False) -> list[dict[str, Any]]:
    """The patient's schedule by start, every page of it."""
    pages = await all_pages(
        s.http, f"/v1/patients/{patient}/appointments", limit=200, include_all=str(include_all).lower()
    )
    return [a for page in pages for a in page]


def day_after_tomorrow(zone: str = ZONE) -> datetime:
    return (datetime.now(ZoneInfo(zone)) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)


# --- an appointment through its life -------------------------------------------------


async def test_what_may_be_booked_with_whom_and_why_not(scheduling: ServiceHarness) -> None:
    state = "ME"
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    therapist = await put_clinician(scheduling, "therapist", [state], DAYTIME)
    elsewhere = await put_clinician(scheduling, "psychiatric_clinician", ["NH"], DAYTIME)
    inactive_id = f"dr-{uuid.uuid4().hex[:10]}"
    response = await scheduling.http.put(
        f"/v1/clinicians/{inactive_id}",
        json={"role": "psychiatric_clinician", "time_zone": ZONE, "licensed_states": [state], "active": False},
    )
    assert response.status_code == 200, response.text
    patient = await register(scheduling, state)
    day = day_after_tomorrow()
    at_ten, at_three_am = day.replace(hour=10), day.replace(hour=3)

    refusals = [
        ("is held by a psychiatric_clinician, and", await book(scheduling, patient, therapist, at_ten)),
        ("is not licensed in the patient's state (ME)", await book(scheduling, patient, elsewhere, at_ten)),
        ("is not available for the whole of", await book(scheduling, patient, clinician, at_three_am)),
        # Ends at 20:30, past the clinician's 20:00.
        ("is not available for the whole of", await book(scheduling, patient, clinician, day.replace(hour=20))),
        ("cannot start in the past", await book(scheduling, patient, clinician, day - timedelta(days=5))),
        ("is not taking appointments", await book(scheduling, patient, inactive_id, at_ten)),
    ]
    for expected, refused in refusals:
        assert refused.status_code == 409 and expected in refused.json()["detail"], (expected, refused.text)
    no_one = await book(scheduling, patient, "dr-nobody", at_ten)
    assert no_one.status_code == 404 and no_one.json()["code"] == "not_found"
    unknown = await book(scheduling, uuid.uuid4(), clinician, at_ten)
    assert unknown.status_code == 409 and "does not know patient" in unknown.json()["detail"]
    invalid = await book(scheduling, patient, clinician, at_ten.replace(tzinfo=None), kind="massage")
    assert invalid.status_code == 422, invalid.text
    assert {e["field"] for e in invalid.json()["errors"]} == {"appointment_type", "starts_at"}
    assert await schedule(scheduling, patient, include_all=True) == []
    assert await scheduling.emitted("AppointmentBooked", patient_id=patient) == []


async def test_an_appointment_through_its_life_over_http(scheduling: ServiceHarness) -> None:
    state = "VT"
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    patient, later_patient = await register(scheduling, state), await register(scheduling, state)
    day = day_after_tomorrow()
    at_ten, at_eleven = day.replace(hour=10), day.replace(hour=11)

    booked = await book(scheduling, patient, clinician, at_ten)
    assert booked.status_code == 201, booked.text
    appointment = booked.json()
    assert appointment["status"] == "booked" and appointment["clinician_id"] == clinician
    assert datetime.fromisoformat(appointment["starts_at_patient_local"]) == at_ten
    assert datetime.fromisoformat(appointment["starts_at_clinician_local"]) == at_ten
    assert datetime.fromisoformat(appointment["ends_at"]) - datetime.fromisoformat(appointment["starts_at"]) == (
        timedelta(minutes=30)
    )
    assert (await act(scheduling, appointment["appointment_id"], "complete")).status_code == 409, "not started yet"
    fetched = await scheduling.http.get(f"/v1/appointments/{appointment['appointment_id']}")
    assert fetched.status_code == 200 and fetched.json() == appointment

    moved = await act(scheduling, appointment["appointment_id"], "reschedule", {"starts_at": at_eleven.isoformat()})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == at_eleven
    taken = await book(scheduling, later_patient, clinician, at_eleven)
    assert taken.status_code == 409 and f"clinician {clinician} is already booked at" in taken.json()["detail"]
    assert (await book(scheduling, later_patient, clinician, at_ten)).status_code == 201, "the moved-from slot is free"

    cancelled = await act(scheduling, appointment["appointment_id"], "cancel", {"reason": "patient_request"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "patient_request"
    again = await act(scheduling, appointment["appointment_id"], "cancel")
    assert again.status_code == 409 and "only a booked appointment can be cancelled" in again.json()["detail"]
    assert await schedule(scheduling, patient) == []
    rebooked = await book(scheduling, patient, clinician, at_eleven)
    assert rebooked.status_code == 201, "a cancelled appointment holds no slot"

    # An appointment that has happened: moved into the past in the database, then marked.
    current = rebooked.json()["appointment_id"]
    async with scheduling.uow.transaction() as tx:
        await tx.session.execute(
            update(appointments)
            .where(appointments.c.appointment_id == uuid.UUID(current))
            .values(starts_at=datetime.now(UTC) - timedelta(hours=2), ends_at=datetime.now(UTC) - timedelta(minutes=90))
        )
    completed = await act(scheduling, current, "complete")
    assert completed.status_code == 200 and completed.json()["status"] == "completed", completed.text
    no_show = await act(scheduling, current, "no-show")
    assert no_show.status_code == 409 and "is completed" in no_show.json()["detail"]

    types = [e["type"] for e in await scheduling.emitted_envelopes(patient_id=patient)]
    assert types == [
        "AppointmentBooked",
        "AppointmentRescheduled",
        "AppointmentCancelled",
        "AppointmentBooked",
        "AppointmentCompleted",
    ]
    [moved_event] = await scheduling.emitted("AppointmentRescheduled", patient_id=patient)
    assert datetime.fromisoformat(moved_event["previous_starts_at"]) == at_ten
    [done] = await scheduling.emitted("AppointmentCompleted", patient_id=patient)
    assert done["new_patient"] is True and done["clinician_id"] == clinician


async def test_time_off_is_neither_offered_nor_bookable(scheduling: ServiceHarness) -> None:
    state = "NH"
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    patient = await register(scheduling, state)
    day = day_after_tomorrow()
    away = await scheduling.http.post(
        f"/v1/clinicians/{clinician}/exceptions",
        json={
            "starts_at": day.replace(hour=13).isoformat(),
            "ends_at": day.replace(hour=15).isoformat(),
            "reason": "training",
        },
    )
    assert away.status_code == 201, away.text
    offered = await scheduling.http.get(
        f"/v1/patients/{patient}/open-slots",
        params={
            "appointment_type": "follow_up",
            "clinician_id": clinician,
            "not_before": day.replace(hour=12).isoformat(),
            "limit": 3,
        },
    )
    assert offered.status_code == 200, offered.text
    assert [datetime.fromisoformat(s["starts_at_clinician_local"]).strftime("%H:%M") for s in offered.json()] == [
        "12:00",
        "12:30",
        "15:00",
    ]
    refused = await book(scheduling, patient, clinician, day.replace(hour=13, minute=30))
    assert refused.status_code == 409 and "is away during" in refused.json()["detail"]

    # Removed, the period is offered again.
    [exception] = (await scheduling.http.get(f"/v1/clinicians/{clinician}/exceptions")).json()
    removed = await scheduling.http.delete(f"/v1/clinicians/{clinician}/exceptions/{exception['exception_id']}")
    assert removed.status_code == 204
    gone = await scheduling.http.delete(f"/v1/clinicians/{clinician}/exceptions/{exception['exception_id']}")
    assert gone.status_code == 404
    assert (await book(scheduling, patient, clinician, day.replace(hour=13, minute=30))).status_code == 201


async def test_open_slots_are_with_clinicians_of_the_role_licensed_in_the_patients_state_inside_the_patients_day(
    scheduling: ServiceHarness,
) -> None:
    state = "KS"
    licensed = await put_clinician(scheduling, "psychiatric_clinician", [state, "MO"], ALL_DAY)
    await put_clinician(scheduling, "psychiatric_clinician", ["MO"], ALL_DAY)  # not licensed in Kansas
    await put_clinician(scheduling, "therapist", [state], ALL_DAY)  # not the role a follow-up needs
    patient = await register(scheduling, state)
    day = day_after_tomorrow()
    offered = await scheduling.http.get(
        f"/v1/patients/{patient}/open-slots",
        params={"appointment_type": "follow_up", "not_before": day.replace(hour=0).isoformat(), "limit": 200},
    )
    assert offered.status_code == 200, offered.text
    slots = offered.json()
    assert slots and {s["clinician_id"] for s in slots} == {licensed}
    local = [datetime.fromisoformat(s["starts_at_patient_local"]) for s in slots]
    assert local[0].strftime("%H:%M") == "08:00", "the clinician works all night; the patient's day starts at 08:00"
    assert all(t.hour * 60 + t.minute >= 8 * 60 and t.hour * 60 + t.minute + 30 <= 21 * 60 for t in local)
    assert local == sorted(local)


# --- no double booking ---------------------------------------------------------------


async def test_concurrent_requests_for_one_slot_book_it_once(scheduling: ServiceHarness) -> None:
    state = "RI"
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    patients = [await register(scheduling, state) for _ in range(5)]
    at_noon = day_after_tomorrow().replace(hour=12)
    responses = await asyncio.gather(*(book(scheduling, p, clinician, at_noon) for p in patients))
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 4}, [r.text for r in responses]
    for refused in (r for r in responses if r.status_code == 409):
        assert f"clinician {clinician} is already booked at" in refused.json()["detail"]
    rows = await scheduling.rows(select(appointments.c.appointment_id).where(appointments.c.clinician_id == clinician))
    assert len(rows) == 1


async def test_one_patient_cannot_hold_two_appointments_at_once(scheduling: ServiceHarness) -> None:
    state = "DE"
    clinicians = [await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME) for _ in range(3)]
    patient = await register(scheduling, state)
    at_three = day_after_tomorrow().replace(hour=15)
    # One after the other: the booking check says so.
    first = await book(scheduling, patient, clinicians[0], at_three)
    assert first.status_code == 201, first.text
    overlapping = await book(scheduling, patient, clinicians[1], at_three + timedelta(minutes=15))
    assert overlapping.status_code == 409
    assert overlapping.json()["detail"] == "the patient already has an appointment at that time"
    # At once, for another time: the database's constraint does.
    later = at_three + timedelta(hours=2)
    responses = await asyncio.gather(*(book(scheduling, patient, c, later) for c in clinicians))
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 2}, [r.text for r in responses]
    assert {r.json()["detail"] for r in responses if r.status_code == 409} == {
        "the patient already has an appointment at that time"
    }
    assert len(await schedule(scheduling, patient)) == 2


# --- the clinician directory ---------------------------------------------------------


async def test_the_directory_lists_clinicians_with_their_windows_by_state_and_role(scheduling: ServiceHarness) -> None:
    state = "WV"
    windows = [
        {"weekday": 4, "start": "13:00", "end": "17:00"},
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "07:00", "end": "08:00"},
    ]
    doctor = await put_clinician(scheduling, "psychiatric_clinician", [state], windows)
    therapist = await put_clinician(scheduling, "therapist", [state], [])
    response = await scheduling.http.get("/v1/clinicians", params={"state": state})
    assert response.status_code == 200, response.text
    listed = {c["clinician_id"]: c for c in response.json()["items"]}
    assert set(listed) == {doctor, therapist}
    assert [c["clinician_id"] for c in response.json()["items"]] == sorted(listed)
    assert listed[doctor]["weekly_availability"] == [
        {"weekday": 0, "start": "07:00", "end": "08:00"},
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 4, "start": "13:00", "end": "17:00"},
    ]
    assert listed[therapist]["weekly_availability"] == []
    assert listed[doctor] == (await scheduling.http.get(f"/v1/clinicians/{doctor}")).json()
    by_role = await scheduling.http.get("/v1/clinicians", params={"state": state, "role": "therapist"})
    assert [c["clinician_id"] for c in by_role.json()["items"]] == [therapist]
    replaced = await scheduling.http.put(
        f"/v1/clinicians/{therapist}/availability", json=[{"weekday": 6, "start": "10:00", "end": "24:00"}]
    )
    assert replaced.status_code == 200 and replaced.json()["weekly_availability"] == [
        {"weekday": 6, "start": "10:00", "end": "24:00"}
    ]
    assert (await scheduling.http.get("/v1/clinicians/dr-nobody")).status_code == 404


async def test_the_directory_pages_by_clinician_id_every_clinician_once_with_their_windows(
    scheduling: ServiceHarness,
) -> None:
    state = "OK"
    windows = [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 3, "start": "13:00", "end": "17:00"}]
    made = [await put_clinician(scheduling, "therapist", [state], windows) for _ in range(5)]
    await put_clinician(scheduling, "therapist", ["OH"], windows)  # elsewhere: never on these pages

    pages = await all_pages(scheduling.http, "/v1/clinicians", state=state)
    assert [len(p) for p in pages] == [2, 2, 1], "a page of two, and windows never split a clinician across pages"
    assert [c["clinician_id"] for p in pages for c in p] == sorted(made), "every clinician once, by id"
    assert all(len(c["weekly_availability"]) == 2 for p in pages for c in p)

    cursor = await first_cursor(scheduling.http, "/v1/clinicians", state=state)
    await assert_refused_cursor(scheduling.http, "/v1/clinicians", altered(cursor), state=state)


async def test_a_patients_schedule_pages_by_start_every_appointment_once(scheduling: ServiceHarness) -> None:
    state = "UT"
    clinicians = [await put_clinician(scheduling, "psychiatric_clinician", [state], ALL_DAY) for _ in range(2)]
    patient = await register(scheduling, state)
    first = day_after_tomorrow().replace(hour=9)
    booked = []
    # Booked out of order, with two clinicians: the list's order is the start, not the booking or the clinician.
    for hours in (5, 1, 3, 0, 4):
        response = await book(scheduling, patient, clinicians[hours % 2], first + timedelta(hours=hours))
        assert response.status_code == 201, response.text
        booked.append(response.json())

    pages = await all_pages(scheduling.http, f"/v1/patients/{patient}/appointments")
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [a for p in pages for a in p]
    assert [a["appointment_id"] for a in listed] == [
        a["appointment_id"] for a in sorted(booked, key=lambda a: datetime.fromisoformat(a["starts_at"]))
    ], "every appointment once, by start"

    path = f"/v1/patients/{patient}/appointments"
    cursor = await first_cursor(scheduling.http, path)
    await assert_refused_cursor(scheduling.http, path, altered(cursor))
    directory = await first_cursor(scheduling.http, "/v1/clinicians", state=state)
    await assert_refused_cursor(scheduling.http, path, directory)  # another list's cursor


# --- review visits -------------------------------------------------------------------


def zone_where_it_is(local_hour: int) -> str:
    """A fixed-offset zone in which the current UTC hour reads as ``local_hour`` (Etc/GMT signs are inverted)."""
    offset = (local_hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def opened(priority: ReviewPriority, due_in: timedelta) -> ClinicianReviewOpened:
    return ClinicianReviewOpened(
        review_id=uuid.uuid4(),
        reason="severe_side_effect",
        priority=priority,
        due_at=datetime.now(UTC) + due_in,
        triggers=["grade_3"],
        rule_version="test",
    )


async def test_an_urgent_review_is_seen_at_any_hour_before_it_is_due_and_others_in_the_patients_day(
    scheduling: ServiceHarness,
) -> None:
    zone = zone_where_it_is(1)  # 01:xx for the patient
    state = "AR"
    await put_clinician(scheduling, "psychiatric_clinician", [state], ALL_DAY, zone)
    patient = await register(scheduling, state, zone)
    urgent, high = opened(ReviewPriority.urgent, timedelta(hours=4)), opened(ReviewPriority.high, timedelta(hours=4))
    for review in (urgent, high):
        await scheduling.deliver(review, patient_id=patient, producer="safety")
    visits = {a["review_id"]: a for a in await schedule(scheduling, patient)}
    urgent_visit, high_visit = visits[str(urgent.review_id)], visits[str(high.review_id)]
    assert urgent_visit["appointment_type"] == "urgent_review" and urgent_visit["review_priority"] == "urgent"
    assert datetime.fromisoformat(urgent_visit["ends_at"]) <= urgent.due_at
    assert datetime.fromisoformat(urgent_visit["starts_at_patient_local"]).hour < 8, "at night"
    high_start = datetime.fromisoformat(high_visit["starts_at_patient_local"])
    assert high_start.strftime("%H:%M") == "08:00", "the first slot of the patient's morning, past its due time"
    assert datetime.fromisoformat(high_visit["starts_at"]) > high.due_at
    booked = {b["review_id"]: b for b in await scheduling.emitted("AppointmentBooked", patient_id=patient)}
    assert set(booked) == {str(urgent.review_id), str(high.review_id)}
    assert await scheduling.emitted("ReviewAppointmentUnavailable", patient_id=patient) == []


async def test_a_review_no_licensed_clinician_can_take_is_announced(scheduling: ServiceHarness) -> None:
    await put_clinician(scheduling, "psychiatric_clinician", ["CO"], ALL_DAY)
    patient = await register(scheduling, "WY")  # no clinician is licensed in Wyoming
    review = opened(ReviewPriority.urgent, timedelta(hours=4))
    await scheduling.deliver(review, patient_id=patient, producer="safety")
    [unavailable] = await scheduling.emitted("ReviewAppointmentUnavailable", patient_id=patient)
    assert unavailable["review_id"] == str(review.review_id)
    assert unavailable["reason"] == "no_licensed_clinician_free"
    assert await schedule(scheduling, patient) == []

    # Where the patient lives is not known yet: that is the reason given.
    stranger = uuid.uuid4()
    unknown = opened(ReviewPriority.high, timedelta(hours=4))
    await scheduling.deliver(unknown, patient_id=stranger, producer="safety")
    [announced] = await scheduling.emitted("ReviewAppointmentUnavailable", patient_id=stranger)
    assert announced["reason"] == "patient_location_unknown"


async def test_a_redelivered_review_books_one_visit(scheduling: ServiceHarness) -> None:
    state = "SD"
    await put_clinician(scheduling, "psychiatric_clinician", [state], ALL_DAY)
    patient = await register(scheduling, state)
    envelope = await scheduling.deliver(
        opened(ReviewPriority.urgent, timedelta(hours=6)), patient_id=patient, producer="safety"
    )
    await scheduling.deliver_envelope(envelope, expect=Outcome.duplicate)
    assert len(await schedule(scheduling, patient)) == 1
    assert len(await scheduling.emitted("AppointmentBooked", patient_id=patient)) == 1
