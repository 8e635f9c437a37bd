"""Scheduling's FHIR R4 Appointments, read back from appointments booked and cancelled through its API.

A patient registered through intake (Colorado) and a psychiatric clinician licensed there; one dosing
session is booked and a follow-up booked then cancelled. Every answer is validated against the
specification (tests/fhir_validation.py) and its mapping asserted; the searches and reads leave the
audit rows of the schedule and appointment reads they mirror.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.http.fhir import CODE_SYSTEM_BASE
from tests.auth import api_client, patient_token
from tests.e2e import access_cases as ac
from tests.e2e import journeys
from tests.fhir_validation import entries, validated
from tests.problem_walk import assert_problem

pytestmark = pytest.mark.e2e

SERVICE = "scheduling"
STATE, ZONE = "CO", "America/Denver"


@dataclass(frozen=True)
class Booked:
    stack: Stack
    patient_id: uuid.UUID
    clinician_id: str
    dosing: dict[str, Any]  # as POST /v1/appointments answered
    cancelled: dict[str, Any]  # as POST /v1/appointments/{id}/cancel answered


async def _book(stack: Stack, patient_id: uuid.UUID, clinician_id: str, kind: str) -> dict[str, Any]:
    async with api_client() as http:
        slots = await http.get(
            journeys.url(stack, SERVICE, f"/v1/patients/{patient_id}/open-slots"),
            params={"appointment_type": kind, "clinician_id": clinician_id, "limit": "1"},
        )
        assert slots.status_code == 200, slots.text
        booked = await http.post(
            journeys.url(stack, SERVICE, "/v1/appointments"),
            json={
                "patient_id": str(patient_id),
                "clinician_id": clinician_id,
                "appointment_type": kind,
                "starts_at": slots.json()[0]["starts_at"],
            },
        )
    assert booked.status_code == 201, booked.text
    return booked.json()  # type: ignore[no-any-return]


@pytest_asyncio.fixture(scope="module")
async def booked(services: Stack) -> Booked:
    patient_id = await ac.registered_patient(services, STATE, SERVICE)
    clinician_id = await journeys.clinician(services, "psychiatric_clinician", STATE, ZONE)
    await journeys.join_care_team(services, patient_id, SERVICE, prescriber_id=clinician_id)
    dosing = await _book(services, patient_id, clinician_id, "dosing_session")
    follow_up = await _book(services, patient_id, clinician_id, "follow_up")
    async with api_client() as http:
        cancelled = await http.post(
            journeys.url(services, SERVICE, f"/v1/appointments/{follow_up['appointment_id']}/cancel"),
            json={"reason": "patient_request"},
        )
    assert cancelled.status_code == 200, cancelled.text
    return Booked(services, patient_id, clinician_id, dosing, cancelled.json())


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _assert_maps(resource: dict[str, Any], ours: dict[str, Any], status: str, minutes: int) -> None:
    validated(resource)
    assert resource["resourceType"] == "Appointment"
    assert resource["id"] == ours["appointment_id"]
    assert resource["status"] == status
    assert _at(resource["start"]) == _at(ours["starts_at"]) and _at(resource["start"]).utcoffset() is not None
    assert _at(resource["end"]) == _at(ours["ends_at"])
    assert resource["minutesDuration"] == minutes
    assert resource["appointmentType"]["coding"][0]["system"] == f"{CODE_SYSTEM_BASE}/appointment-type"
    assert resource["appointmentType"]["coding"][0]["code"] == ours["appointment_type"]
    assert _at(resource["created"]) <= _at(resource["start"])
    assert [(p["actor"], p["required"], p["status"]) for p in resource["participant"]] == [
        ({"reference": f"Patient/{ours['patient_id']}"}, "required", "accepted"),
        ({"reference": f"Practitioner/{ours['clinician_id']}"}, "required", "accepted"),
    ]


async def test_booked_and_cancelled_appointments_read_back_as_fhir_appointments(booked: Booked) -> None:
    me = ac.patient(booked.patient_id)
    async with api_client(me.token) as http:
        bundle = await journeys.fhir(
            http, booked.stack, SERVICE, "/Appointment", patient=f"Patient/{booked.patient_id}"
        )
        found = {r["id"]: r for r in entries(bundle)}
        dosing_id, cancelled_id = booked.dosing["appointment_id"], booked.cancelled["appointment_id"]
        assert {dosing_id, cancelled_id} <= set(found), found.keys()
        assert bundle["total"] == len(found)
        assert bundle["link"][0]["url"].endswith(f"patient=Patient%2F{booked.patient_id}&_count=50")
        _assert_maps(found[dosing_id], booked.dosing, "booked", 120)
        _assert_maps(found[cancelled_id], booked.cancelled, "cancelled", 30)
        assert "cancelationReason" not in found[dosing_id]
        assert found[cancelled_id]["cancelationReason"]["coding"] == [
            {"system": f"{CODE_SYSTEM_BASE}/appointment-cancel-reason", "code": "patient_request"}
        ]
        assert [c["code"] for c in found[cancelled_id]["appointmentType"]["coding"]] == ["follow_up", "FOLLOWUP"]

        for appointment_id in (dosing_id, cancelled_id):
            one = await journeys.fhir(http, booked.stack, SERVICE, f"/Appointment/{appointment_id}")
            assert one == found[appointment_id]

    rows = await ac.audit_rows(booked.stack, SERVICE, me)
    assert [(r["action"], r["resource"], r["resource_id"], r["patient_id"], r["outcome"]) for r in rows] == [
        ("read", "appointments", None, booked.patient_id, "allowed"),
        ("read", "appointment", dosing_id, booked.patient_id, "allowed"),
        ("read", "appointment", cancelled_id, booked.patient_id, "allowed"),
    ], rows


async def test_a_search_narrows_by_status_and_by_start(booked: Booked) -> None:
    dosing_id, cancelled_id = booked.dosing["appointment_id"], booked.cancelled["appointment_id"]
    patient = str(booked.patient_id)

    async def ids(**params: str) -> set[str]:
        async with api_client() as http:
            bundle = await journeys.fhir(http, booked.stack, SERVICE, "/Appointment", patient=patient, **params)
        return {r["id"] for r in entries(bundle)} & {dosing_id, cancelled_id}

    assert await ids(status="cancelled") == {cancelled_id}
    assert await ids(status="booked,noshow") == {dosing_id}
    assert await ids(status="fulfilled") == set()
    later, earlier = sorted([booked.dosing, booked.cancelled], key=lambda a: a["starts_at"], reverse=True)
    assert await ids(date=f"ge{later['starts_at']}") == {later["appointment_id"]}
    assert await ids(date=f"le{earlier['starts_at']}") == {earlier["appointment_id"]}
    async with api_client() as http:
        answer = await http.get(
            journeys.url(booked.stack, SERVICE, "/fhir/R4/Appointment"),
            params=[("patient", patient), ("status", "cancelled"), ("date", "ge2020-01-01"), ("_count", "1")],
        )
    assert answer.status_code == 200, answer.text
    assert "status=cancelled&date=ge2020-01-01&patient=" in answer.json()["link"][0]["url"]


async def test_another_patients_token_is_refused_the_search_and_the_read_and_each_is_audited(booked: Booked) -> None:
    other = ac.patient(uuid.uuid4())
    appointment_id = booked.dosing["appointment_id"]
    search = ac.Request("GET", "/fhir/R4/Appointment", params={"patient": str(booked.patient_id)})
    assert_problem(await ac.call(booked.stack, SERVICE, search, other), 403)
    read = ac.Request("GET", f"/fhir/R4/Appointment/{appointment_id}")
    assert_problem(await ac.call(booked.stack, SERVICE, read, other), 403)
    rows = await ac.audit_rows(booked.stack, SERVICE, other)
    assert [(r["action"], r["resource"], r["resource_id"], r["patient_id"], r["outcome"]) for r in rows] == [
        ("read", "appointments", None, booked.patient_id, "denied"),
        ("read", "appointment", appointment_id, booked.patient_id, "denied"),
    ], rows


async def test_a_clinician_licensed_elsewhere_is_refused(booked: Booked) -> None:
    elsewhere = ac.clinician(ac.ELSEWHERE)
    search = ac.Request("GET", "/fhir/R4/Appointment", params={"patient": str(booked.patient_id)})
    assert_problem(await ac.call(booked.stack, SERVICE, search, elsewhere), 403)
    outside_the_team = ac.clinician(STATE)
    assert (
        ac.NOT_RELATED in assert_problem(await ac.call(booked.stack, SERVICE, search, outside_the_team), 403)["detail"]
    )
    on_the_team = ac.clinician(STATE, subject=booked.clinician_id)
    assert (await ac.call(booked.stack, SERVICE, search, on_the_team)).status_code == 200


@pytest.mark.parametrize("appointment_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_appointment_is_a_404_problem(booked: Booked, appointment_id: str) -> None:
    request = ac.Request("GET", f"/fhir/R4/Appointment/{appointment_id}")
    assert_problem(await ac.call(booked.stack, SERVICE, request, ac.service()), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"patient": "not-a-patient"},
        {},
        {"patient": "{p}", "status": "bogus"},
        {"patient": "{p}", "date": "eq2031-01-01"},
        {"patient": "{p}", "date": "ge2031-01-01T09:00:00"},
    ],
    ids=["bad patient", "no patient", "bad status", "unsupported prefix", "no offset"],
)
async def test_a_bad_search_parameter_is_a_422_problem(booked: Booked, params: dict[str, str]) -> None:
    sent = {k: v.format(p=booked.patient_id) for k, v in params.items()}
    request = ac.Request("GET", "/fhir/R4/Appointment", params=sent)
    assert_problem(await ac.call(booked.stack, SERVICE, request, ac.service()), 422)


async def test_the_capability_statement_lists_appointment_and_its_search_parameters(booked: Booked) -> None:
    async with api_client(patient_token(booked.patient_id)) as http:
        statement = await journeys.fhir(http, booked.stack, SERVICE, "/metadata")
    (served,) = statement["rest"][0]["resource"]
    assert served["type"] == "Appointment"
    assert {p["name"] for p in served["searchParam"]} >= {"patient", "status", "date"}
