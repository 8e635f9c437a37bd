"""A patient's chart and the worklist read back from a live safety service: what was recorded, a page at a time, newest first,
to whom the free text is shown, a review's decision with who made it and when, and who reaches the chart at all
(the care team, the clinician on call for the patient's state, a review's assignee; ADR 0015)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from carecoord_devstack.stack import Stack
from carecoord_safety.models import audit, clinician_reviews, jurisdictions
from tests.auth import SERVICE_TOKEN, clinician_token, operator_token, patient_token
from tests.care import join_care_team
from tests.service_harness import ServiceHarness

STATE = "CO"
CLINICIAN = "dr-chart-reader"


@pytest.fixture(scope="module")
async def safety(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "safety", database="safety_chart") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def _resident(safety: ServiceHarness, state: str = STATE, prescriber: str | None = CLINICIAN) -> uuid.UUID:
    """A patient safety knows lives in ``state`` (as PatientRegistered would have told it), with
    ``prescriber`` on their care team (as CareTeamChanged would have)."""
    patient_id = uuid.uuid4()
    async with safety.uow.sessions.begin() as session:
        await session.execute(jurisdictions.insert().values(patient_id=patient_id, state_of_residence=state))
    await join_care_team(safety, patient_id, prescriber)
    return patient_id


async def _record(safety: ServiceHarness, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await safety.http.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def _all_pages(client: httpx.AsyncClient, path: str, **filters: str | list[str]) -> list[list[dict[str, Any]]]:
    """Every page of a list read with limit=2 (and ``filters``), following next_cursor to its end."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": "2", **filters}
    while True:
        response = await client.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["limit"] == 2
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert len(pages) < 5, "the cursor never ends"
        params = {"limit": "2", **filters, "cursor": page["next_cursor"]}


async def test_a_patients_chart_pages_newest_first_and_shows_the_note_to_clinicians_only(
    safety: ServiceHarness,
) -> None:
    patient_id, other = await _resident(safety), await _resident(safety)
    now = datetime.now(UTC).replace(microsecond=0)
    reports = [
        (await _record(safety, "/v1/side-effect-reports", body))["report_id"]
        for body in (
            {"patient_id": str(patient_id), "symptoms": ["nausea"], "grade": 1, "note": f"first {n}"} for n in range(3)
        )
    ]
    vitals = [
        (
            await _record(
                safety,
                "/v1/vitals",
                {
                    "patient_id": str(patient_id),
                    "systolic": 120 + n,
                    "diastolic": 80,
                    "heart_rate": 70,
                    "measured_at": (now - timedelta(hours=3 - n)).isoformat(),
                    "context": "routine",
                },
            )
        )["id"]
        for n in range(3)
    ]
    checkins = [
        (
            await _record(
                safety,
                "/v1/mood-check-ins",
                {
                    "patient_id": str(patient_id),
                    "phq9_items": [n, 0, 0, 0, 0, 0, 0, 0, 0],
                    "answered_at": (now - timedelta(hours=3 - n)).isoformat(),
                },
            )
        )["id"]
        for n in range(3)
    ]
    # The other patient's one of each must not appear in this patient's chart.
    await _record(safety, "/v1/side-effect-reports", {"patient_id": str(other), "symptoms": ["nausea"], "grade": 1})
    await _record(
        safety,
        "/v1/vitals",
        {
            "patient_id": str(other),
            "systolic": 118,
            "diastolic": 76,
            "measured_at": now.isoformat(),
            "context": "routine",
        },
    )
    await _record(
        safety,
        "/v1/mood-check-ins",
        {"patient_id": str(other), "phq9_items": [0] * 9, "answered_at": now.isoformat()},
    )

    doctor = safety.client(clinician_token(CLINICIAN, [STATE]))
    own = safety.client(patient_token(patient_id))
    for path, key, recorded in (
        ("side-effect-reports", "report_id", reports),
        ("vitals", "reading_id", vitals),
        ("mood-check-ins", "checkin_id", checkins),
    ):
        pages = await _all_pages(doctor, f"/v1/patients/{patient_id}/{path}")
        assert [len(p) for p in pages] == [2, 1], path
        # Newest first, each recorded row exactly once, none of the other patient's.
        assert [row[key] for p in pages for row in p] == list(reversed(recorded)), path

    by_doctor = [r for p in await _all_pages(doctor, f"/v1/patients/{patient_id}/side-effect-reports") for r in p]
    assert [r["note"] for r in by_doctor] == ["first 2", "first 1", "first 0"]
    assert by_doctor[0]["symptoms"] == ["nausea"] and by_doctor[0]["grade"] == 1
    by_patient = [r for p in await _all_pages(own, f"/v1/patients/{patient_id}/side-effect-reports") for r in p]
    assert [r["report_id"] for r in by_patient] == list(reversed(reports))
    assert [r["note"] for r in by_patient] == [None, None, None]

    vitals_read = (await doctor.get(f"/v1/patients/{patient_id}/vitals")).json()["items"]
    assert [v["systolic"] for v in vitals_read] == [122, 121, 120]
    assert (await doctor.get(f"/v1/patients/{patient_id}/mood-check-ins")).json()["items"][0]["phq9_total"] == 2

    stranger = safety.client(patient_token(other))
    refused = await stranger.get(f"/v1/patients/{patient_id}/vitals")
    assert refused.status_code == 403, refused.text


async def test_a_resolved_review_reads_back_with_who_decided_when_and_the_note_for_clinicians(
    safety: ServiceHarness,
) -> None:
    patient_id = await _resident(safety)
    outcome = await _record(
        safety, "/v1/side-effect-reports", {"patient_id": str(patient_id), "symptoms": ["dizziness"], "grade": 2}
    )
    review_id = outcome["review_id"]
    assert review_id, outcome
    doctor = safety.client(clinician_token(CLINICIAN, [STATE]))

    acked = await doctor.post(f"/v1/reviews/{review_id}/acknowledge", json={"clinician_id": CLINICIAN})
    assert acked.status_code == 200, acked.text
    resolved = await doctor.post(
        f"/v1/reviews/{review_id}/resolve",
        json={"clinician_id": CLINICIAN, "decision": "resume", "note": "called the patient; settled"},
    )
    assert resolved.status_code == 200, resolved.text

    detail = (await doctor.get(f"/v1/reviews/{review_id}")).json()
    assert detail["status"] == "resolved"
    assert (detail["acknowledged_by"], detail["resolved_by"], detail["decision"]) == (CLINICIAN, CLINICIAN, "resume")
    assert detail["acknowledged_at"] is not None and detail["resolved_at"] >= detail["acknowledged_at"]
    assert detail["resolution_note"] == "called the patient; settled"
    assert detail["trigger_history"] and detail["trigger_history"][0]["source_id"] == outcome["report_id"]

    for reader in (safety.client(patient_token(patient_id)), safety.http):
        shown = (await reader.get(f"/v1/reviews/{review_id}")).json()
        assert (shown["resolved_by"], shown["decision"]) == (CLINICIAN, "resume")
        assert shown["resolution_note"] is None


async def test_the_worklist_pages_most_urgent_first_filters_by_priority_and_reason_and_counts_each_priority(
    safety: ServiceHarness,
) -> None:
    # Patients in a state no other test here uses, seen by a clinician licensed there only.
    patients = [await _resident(safety, "WA", "dr-wa-only") for _ in range(3)]
    # A patient in the same state on someone else's team: licensed is not enough to see their reviews.
    not_theirs = await _resident(safety, "WA", "dr-wa-other")
    await _record(
        safety, "/v1/side-effect-reports", {"patient_id": str(not_theirs), "symptoms": ["nausea"], "grade": 3}
    )
    opened: dict[str, dict[str, Any]] = {}
    for patient_id in patients:
        for symptoms, grade in ((["nausea"], 3), (["dizziness"], 2)):
            outcome = await _record(
                safety, "/v1/side-effect-reports", {"patient_id": str(patient_id), "symptoms": symptoms, "grade": grade}
            )
            for review_id in outcome["review_ids"]:
                opened[review_id] = (await safety.http.get(f"/v1/reviews/{review_id}")).json()
    assert {r["priority"] for r in opened.values()} >= {"urgent"} and len({r["priority"] for r in opened.values()}) > 1
    doctor = safety.client(clinician_token("dr-wa-only", ["WA"]))

    pages = await _all_pages(doctor, "/v1/reviews")
    listed = [r for p in pages for r in p]
    assert sorted(r["review_id"] for r in listed) == sorted(opened), "every review once, none from elsewhere"
    assert all(len(p) == 2 for p in pages[:-1]) and len(pages) == (len(opened) + 1) // 2
    rank = {"urgent": 3, "high": 2, "routine": 1}
    keys = [(-rank[r["priority"]], r["due_at"], r["review_id"]) for r in listed]
    assert keys == sorted(keys), "most urgent first, then earliest due"

    first = (await doctor.get("/v1/reviews", params={"limit": "1"})).json()
    expected = {
        p: sum(r["priority"] == p for r in opened.values())
        for p in rank
        if any(r["priority"] == p for r in opened.values())
    }
    assert first["counts"] == expected, "counts cover the whole list, not the page"

    urgent = [r for p in await _all_pages(doctor, "/v1/reviews", priority="urgent") for r in p]
    assert sorted(r["review_id"] for r in urgent) == sorted(k for k, r in opened.items() if r["priority"] == "urgent")
    reasons = sorted({r["reason"] for r in opened.values()})
    one_reason = [r for p in await _all_pages(doctor, "/v1/reviews", reason=[reasons[0]]) for r in p]
    assert {r["reason"] for r in one_reason} == {reasons[0]}
    both = [r for p in await _all_pages(doctor, "/v1/reviews", reason=reasons) for r in p]
    assert len(both) == len(opened)
    counted = (await doctor.get("/v1/reviews", params={"priority": "urgent"})).json()["counts"]
    assert counted == {"urgent": len(urgent)}

    refused = await doctor.get("/v1/reviews", params={"priority": "whenever"})
    assert refused.status_code == 422, refused.text


async def test_the_worklist_filters_what_is_overdue_and_sorts_by_due_time_or_newest(safety: ServiceHarness) -> None:
    # A state of its own: the lists below are exactly these reviews.
    patients = [await _resident(safety, "OR", "dr-or-only") for _ in range(3)]
    review_ids = []
    for patient_id in patients:
        outcome = await _record(
            safety, "/v1/side-effect-reports", {"patient_id": str(patient_id), "symptoms": ["dizziness"], "grade": 2}
        )
        review_ids.append(outcome["review_id"])
    # The first is an hour past due and still open; the second was past due too but is acknowledged.
    async with safety.uow.sessions.begin() as session:
        for review_id in review_ids[:2]:
            await session.execute(
                update(clinician_reviews)
                .where(clinician_reviews.c.review_id == review_id)
                .values(due_at=datetime.now(UTC) - timedelta(hours=1))
            )
    doctor = safety.client(clinician_token("dr-or-only", ["OR"]))
    acked = await doctor.post(f"/v1/reviews/{review_ids[1]}/acknowledge", json={"clinician_id": "dr-or-only"})
    assert acked.status_code == 200, acked.text

    late = [r["review_id"] for p in await _all_pages(doctor, "/v1/reviews", overdue="true") for r in p]
    assert late == [review_ids[0]], "open past its due time; an acknowledged one is being handled"
    on_time = {r["review_id"] for p in await _all_pages(doctor, "/v1/reviews", overdue="false") for r in p}
    assert on_time == set(review_ids[1:])

    by_due = [r for p in await _all_pages(doctor, "/v1/reviews", sort="due") for r in p]
    assert [r["due_at"] for r in by_due] == sorted(r["due_at"] for r in by_due) and by_due[0][
        "review_id"
    ] in review_ids[:2]
    newest = [r["review_id"] for p in await _all_pages(doctor, "/v1/reviews", sort="newest") for r in p]
    assert newest == review_ids[::-1], "the one opened last first"

    # A cursor belongs to its order: one from the due order is refused by the newest order.
    cursor = (await doctor.get("/v1/reviews", params={"sort": "due", "limit": "1"})).json()["next_cursor"]
    crossed = await doctor.get("/v1/reviews", params={"sort": "newest", "cursor": cursor})
    assert crossed.status_code == 422 and crossed.json()["code"] == "invalid_cursor", crossed.text
    unknown = await doctor.get("/v1/reviews", params={"sort": "whenever"})
    assert unknown.status_code == 422, unknown.text


async def test_a_licensed_clinician_outside_the_care_team_is_refused_and_on_call_is_let_in_audited_as_such(
    safety: ServiceHarness,
) -> None:
    patient_id = await _resident(safety, "NM", prescriber="dr-nm-prescriber")
    chart = f"/v1/patients/{patient_id}/side-effect-reports"
    outsider = await safety.client(clinician_token("dr-nm-tonight", ["NM"])).get(chart)
    assert outsider.status_code == 403, outsider.text
    assert "not on the patient's care team, not on call" in outsider.json()["detail"]

    now = datetime.now(UTC)
    shift = {
        "state": "NM",
        "role": "on_call",
        "clinician_id": "dr-nm-tonight",
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=8)).isoformat(),
    }
    added = await safety.client(operator_token()).post("/v1/rota/shifts", json=shift)
    assert added.status_code == 201, added.text
    on_call = await safety.client(clinician_token("dr-nm-tonight", ["NM"])).get(chart)
    assert on_call.status_code == 200, on_call.text
    team = await safety.client(clinician_token("dr-nm-prescriber", ["NM"])).get(chart)
    assert team.status_code == 200, team.text

    rows = await safety.rows(
        select(audit.c.actor, audit.c.outcome, audit.c.basis)
        .where(audit.c.patient_id == patient_id)
        .order_by(audit.c.id)
    )
    assert [tuple(r) for r in rows] == [
        ("dr-nm-tonight", "denied", None),
        ("dr-nm-tonight", "allowed", "on_call"),
        ("dr-nm-prescriber", "allowed", "care_team:prescriber"),
    ]
