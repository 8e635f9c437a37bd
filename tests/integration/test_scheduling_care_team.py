"""Scheduling owns the care team (ADR 0015), through its own routes (tests/service_harness.py: no Kafka, real
PostgreSQL): booking the initial evaluation makes its clinician the prescriber, booking the preparation session
makes its clinician the therapist, staff change it with PUT /v1/patients/{id}/care-team; each change is written
with its CareTeamChanged (the outbox, keyed by the patient) and the team is what scheduling's own access uses.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_devstack.stack import Stack
from carecoord_scheduling.models import audit
from tests.auth import clinician_token, operator_token
from tests.integration.test_scheduling_booking import DAYTIME, book, day_after_tomorrow, put_clinician, register
from tests.service_harness import ServiceHarness

STATE = "VT"


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_care_team_it") as harness:
        yield harness


async def team_events(s: ServiceHarness, patient: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {k: e["payload"][k] for k in ("prescriber_id", "therapist_id", "reason", "changed_by")}
        for e in await s.emitted_envelopes("CareTeamChanged", patient_id=patient)
    ]


async def test_booking_the_first_visits_sets_the_care_team_once_each(scheduling: ServiceHarness) -> None:
    prescriber = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    therapist = await put_clinician(scheduling, "therapist", [STATE], DAYTIME)
    patient = await register(scheduling, STATE)
    day = day_after_tomorrow()
    assert (await scheduling.http.get(f"/v1/patients/{patient}/care-team")).json() == {
        "patient_id": str(patient),
        "prescriber_id": None,
        "therapist_id": None,
    }

    evaluation = await book(scheduling, patient, prescriber, day.replace(hour=9), "initial_evaluation")
    assert evaluation.status_code == 201, evaluation.text
    preparation = await book(scheduling, patient, therapist, day.replace(hour=14), "preparation")
    assert preparation.status_code == 201, preparation.text
    # A follow-up makes nobody a member; moving nothing, it says nothing.
    assert (await book(scheduling, patient, prescriber, day.replace(hour=17))).status_code == 201

    team = (await scheduling.http.get(f"/v1/patients/{patient}/care-team")).json()
    assert (team["prescriber_id"], team["therapist_id"]) == (prescriber, therapist)
    assert await team_events(scheduling, patient) == [
        {"prescriber_id": prescriber, "therapist_id": None, "reason": "initial_evaluation_booked", "changed_by": None},
        {"prescriber_id": prescriber, "therapist_id": therapist, "reason": "preparation_booked", "changed_by": None},
    ]
    # The prescriber reaches the patient's schedule here now, on that basis; a colleague licensed alike does not.
    own = await scheduling.client(clinician_token(prescriber, [STATE])).get(f"/v1/patients/{patient}/appointments")
    assert own.status_code == 200, own.text
    colleague = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    refused = await scheduling.client(clinician_token(colleague, [STATE])).get(f"/v1/patients/{patient}/appointments")
    assert refused.status_code == 403 and "not on the patient's care team" in refused.json()["detail"]
    bases = await scheduling.rows(
        select(audit.c.actor, audit.c.outcome, audit.c.basis).where(
            audit.c.patient_id == patient, audit.c.resource == "appointments"
        )
    )
    assert [tuple(r) for r in bases] == [(prescriber, "allowed", "care_team:prescriber"), (colleague, "denied", None)]


async def test_a_clinician_booking_a_patients_evaluation_with_themselves_takes_them_on(
    scheduling: ServiceHarness,
) -> None:
    prescriber = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    other = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    patient = await register(scheduling, STATE)
    at = day_after_tomorrow().replace(hour=11).isoformat()
    body = {"patient_id": str(patient), "appointment_type": "initial_evaluation", "starts_at": at}
    client = scheduling.client(clinician_token(prescriber, [STATE]))

    # Not with somebody else: that is no relation of their own.
    for_other = await client.post("/v1/appointments", json={**body, "clinician_id": other})
    assert for_other.status_code == 403, for_other.text
    booked = await client.post("/v1/appointments", json={**body, "clinician_id": prescriber})
    assert booked.status_code == 201, booked.text
    [row] = await scheduling.rows(
        select(audit.c.basis).where(audit.c.actor == prescriber, audit.c.outcome == "allowed")
    )
    assert row.basis == "care_team:prescriber"
    assert (await scheduling.http.get(f"/v1/patients/{patient}/care-team")).json()["prescriber_id"] == prescriber


async def test_staff_change_the_team_by_hand_audited_and_published(scheduling: ServiceHarness) -> None:
    first = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    second = await put_clinician(scheduling, "psychiatric_clinician", [STATE], DAYTIME)
    therapist = await put_clinician(scheduling, "therapist", [STATE], DAYTIME)
    patient = await register(scheduling, STATE)
    assert (
        await book(scheduling, patient, first, day_after_tomorrow().replace(hour=10), "initial_evaluation")
    ).status_code == 201
    operator = scheduling.client(operator_token("operator-teams"))

    changed = await operator.put(
        f"/v1/patients/{patient}/care-team", json={"prescriber_id": second, "therapist_id": therapist}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"patient_id": str(patient), "prescriber_id": second, "therapist_id": therapist}
    # Left out: kept; null: removed.
    kept = await operator.put(f"/v1/patients/{patient}/care-team", json={"therapist_id": None})
    assert kept.json() == {"patient_id": str(patient), "prescriber_id": second, "therapist_id": None}

    assert (await team_events(scheduling, patient))[1:] == [
        {
            "prescriber_id": second,
            "therapist_id": therapist,
            "reason": "changed_by_staff",
            "changed_by": "operator-teams",
        },
        {"prescriber_id": second, "therapist_id": None, "reason": "changed_by_staff", "changed_by": "operator-teams"},
    ]
    rows = await scheduling.rows(
        select(audit.c.action, audit.c.resource, audit.c.outcome, audit.c.basis).where(
            audit.c.actor == "operator-teams", audit.c.patient_id == patient
        )
    )
    assert [tuple(r) for r in rows] == [("change", "care-team", "allowed", "operational")] * 2
    # The change is access: the old prescriber no longer reaches the patient, the new one does.
    path = f"/v1/patients/{patient}/appointments"
    assert (await scheduling.client(clinician_token(first, [STATE])).get(path)).status_code == 403
    assert (await scheduling.client(clinician_token(second, [STATE])).get(path)).status_code == 200


async def test_a_team_names_known_clinicians_licensed_in_the_patients_state(scheduling: ServiceHarness) -> None:
    elsewhere = await put_clinician(scheduling, "psychiatric_clinician", ["NH"], DAYTIME)
    patient = await register(scheduling, STATE)
    before = await team_events(scheduling, patient)
    cases = {
        "unknown_clinician": {"prescriber_id": "dr-nobody-at-all"},
        "not_licensed": {"therapist_id": elsewhere},
    }
    for reason, body in cases.items():
        response = await scheduling.http.put(f"/v1/patients/{patient}/care-team", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["reason"] == reason
    for body in ({}, {"prescriber_id": "dr-x", "extra": 1}, {"prescriber_id": "x" * 500}):
        assert (await scheduling.http.put(f"/v1/patients/{patient}/care-team", json=body)).status_code == 422, body
    assert await team_events(scheduling, patient) == before, "nothing was changed or published"
    # A clinician outside the team (licensed alike) neither reads nor changes it; a patient cannot change it.
    outsider = scheduling.client(clinician_token("dr-outsider", [STATE]))
    assert (await outsider.get(f"/v1/patients/{patient}/care-team")).status_code == 403
    assert (
        await outsider.put(f"/v1/patients/{patient}/care-team", json={"prescriber_id": "dr-outsider"})
    ).status_code == 403
