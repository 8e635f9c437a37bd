"""Steps of a patient journey, driven over the services' real HTTP APIs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.kafka_io import group_caught_up, publish_event
from tests.plans import COURSE, treatment_consent_signed


def url(stack: Stack, service: str, path: str) -> str:
    return f"{stack.services[service].url}{path}"


async def sign_treatment_consent(stack: Stack, patient_id: uuid.UUID) -> None:
    """The patient's signature of the ketamine treatment consent, as intake announces it, heard by dosing
    (no session is authorised without it, ADR 0016). The suite's plans are for patients intake never
    registered, so the event is published as intake's; tests/e2e/test_consent.py signs through intake's API."""
    await publish_event(stack.kafka.bootstrap, "intake.patients", treatment_consent_signed(), patient_id, "intake")
    await eventually(
        lambda: group_caught_up(stack.kafka.bootstrap, "carecoord.dosing", "intake.patients"),
        what="dosing heard the treatment consent",
    )


async def active_plan(stack: Stack, patient_id: uuid.UUID, *, consent: bool = True) -> dict[str, Any]:
    """An active plan at the suite's course; ``consent``: the patient signed the treatment consent first."""
    if consent:
        await sign_treatment_consent(stack, patient_id)
    async with api_client(timeout=10) as http:
        created = await http.post(
            url(stack, "dosing", "/v1/plans"),
            json={"patient_id": str(patient_id), "clinician_id": "dr-lee", **COURSE},
        )
        assert created.status_code == 201, created.text
        activated = await http.post(
            url(stack, "dosing", f"/v1/plans/{created.json()['plan_id']}/activate"), json={"clinician_id": "dr-lee"}
        )
        assert activated.status_code == 200, activated.text
        assert activated.json()["status"] == "active"
        return activated.json()  # type: ignore[no-any-return]


async def pre_dose_reading(
    stack: Stack, patient: uuid.UUID, appointment: uuid.UUID, systolic: int = 122, minutes_ago: int = 10
) -> None:
    """A pre-dose reading taken for the session through safety's API, heard by dosing."""
    async with api_client(timeout=10) as http:
        response = await http.post(
            url(stack, "safety", "/v1/vitals"),
            json={
                "patient_id": str(patient),
                "systolic": systolic,
                "diastolic": 78,
                "measured_at": (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat(),
                "context": "pre_dose",
                "appointment_id": str(appointment),
            },
        )
    assert response.status_code == 201, response.text
    await eventually(
        lambda: group_caught_up(stack.kafka.bootstrap, "carecoord.dosing", "safety.reports"),
        what="dosing heard the reading",
    )


async def authorise(stack: Stack, patient: uuid.UUID, appointment: uuid.UUID) -> dict[str, Any]:
    """Ask dosing whether the session may go ahead (as the suite's service); its answer, authorised or refused."""
    async with api_client(timeout=10) as http:
        response = await http.post(
            url(stack, "dosing", f"/v1/dosing-sessions/{appointment}/authorise"),
            json={"patient_id": str(patient)},
        )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def plan(stack: Stack, patient_id: uuid.UUID) -> dict[str, Any]:
    async with api_client(timeout=10) as http:
        response = await http.get(url(stack, "dosing", f"/v1/patients/{patient_id}/plan"))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


async def report(stack: Stack, patient_id: uuid.UUID, **fields: Any) -> httpx.Response:
    async with api_client(timeout=10) as http:
        return await http.post(
            url(stack, "safety", "/v1/side-effect-reports"), json={"patient_id": str(patient_id), **fields}
        )


async def reviews(stack: Stack, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    async with api_client(timeout=10) as http:
        # One patient's reviews: far fewer than a page of the most the worklist gives.
        params = {"patient_id": str(patient_id), "limit": "200"}
        response = await http.get(url(stack, "safety", "/v1/reviews"), params=params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None, "more reviews than a test patient has"
        return response.json()["items"]  # type: ignore[no-any-return]


async def worklist(http: httpx.AsyncClient, stack: Stack, **params: str) -> list[dict[str, Any]]:
    """The whole worklist ``http``'s caller sees, every page followed (the suite's patients accumulate)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page_params = {"limit": "200", **params} | ({"cursor": cursor} if cursor else {})
        response = await http.get(url(stack, "safety", "/v1/reviews"), params=page_params)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def received(stack: Stack, service: str, patient_id: uuid.UUID) -> list[str]:
    async with api_client(timeout=10) as http:
        events = await every_item(http, stack, service, f"/v1/patients/{patient_id}/received-events")
        return [e["event_type"] for e in events]


ALL_WEEK = [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]


async def clinician(
    stack: Stack,
    role: str,
    state: str,
    time_zone: str,
    windows: list[dict[str, Any]] = ALL_WEEK,
    *,
    clinician_id: str | None = None,
    also_licensed_in: tuple[str, ...] = (),
) -> str:
    """A clinician in scheduling, licensed in ``state`` (and ``also_licensed_in``); returns the id."""
    clinician_id = clinician_id or f"{role[:5]}-{state.lower()}-{uuid.uuid4().hex[:8]}"
    states = [state, *also_licensed_in]
    async with api_client(timeout=10) as http:
        response = await http.put(
            url(stack, "scheduling", f"/v1/clinicians/{clinician_id}"),
            json={"role": role, "time_zone": time_zone, "licensed_states": states, "weekly_availability": windows},
        )
    assert response.status_code == 200, response.text
    return clinician_id


async def every_item(http: httpx.AsyncClient, stack: Stack, service: str, path: str, **params: str) -> list[Any]:
    """Every item of a paged list (``{items, next_cursor, limit}``), each next_cursor followed to the end."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        page_params = {"limit": "200", **params} | ({"cursor": cursor} if cursor else {})
        response = await http.get(url(stack, service, path), params=page_params)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def appointments(stack: Stack, patient_id: uuid.UUID | str, include_all: bool = False) -> list[dict[str, Any]]:
    """A patient's schedule by start, every page of it."""
    async with api_client(timeout=10) as http:
        return await every_item(
            http, stack, "scheduling", f"/v1/patients/{patient_id}/appointments", include_all=str(include_all).lower()
        )


async def fhir(http: httpx.AsyncClient, stack: Stack, service: str, path: str, **params: str) -> dict[str, Any]:
    """A FHIR read from ``/fhir/R4<path>``, validated against the specification (tests/fhir_validation.py)."""
    from tests.fhir_validation import validated

    answer = await http.get(url(stack, service, f"/fhir/R4{path}"), params=params or None)
    assert answer.status_code == 200, (service, path, answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/fhir+json"), answer.headers["content-type"]
    body: dict[str, Any] = answer.json()
    validated(body)
    return body


# The services that learn the care team from CareTeamChanged (scheduling sets it: its rows are there at once).
LEARNS_CARE_TEAMS = ("intake", "dosing", "safety", "billing", "engagement")


async def join_care_team(
    stack: Stack,
    patient_id: uuid.UUID | str,
    *learnt_by: str,
    prescriber_id: str | None = None,
    therapist_id: str | None = None,
) -> None:
    """Put clinicians (already in scheduling's directory, licensed in the patient's state) on the patient's care
    team through scheduling's API, then wait until each service in ``learnt_by`` (default: every one that learns
    it) has learnt them: a licensed clinician reaches a patient's data only as a member (ADR 0015)."""
    body = {k: v for k, v in (("prescriber_id", prescriber_id), ("therapist_id", therapist_id)) if v is not None}
    assert body, "name a prescriber, a therapist or both"
    async with api_client(timeout=10) as http:
        response = await http.put(url(stack, "scheduling", f"/v1/patients/{patient_id}/care-team"), json=body)
    assert response.status_code == 200, response.text
    await care_team_learnt(stack, patient_id, set(body.values()), *learnt_by)


async def care_team_learnt(stack: Stack, patient_id: uuid.UUID | str, members: set[str], *learnt_by: str) -> None:
    """Wait until each service in ``learnt_by`` (default: every one that learns it) has ``members`` on the team."""
    for service in learnt_by or LEARNS_CARE_TEAMS:
        await eventually(
            lambda service=service: _team_learnt(stack, service, uuid.UUID(str(patient_id)), members),
            what=f"{service} learnt the care team",
        )


async def _team_learnt(stack: Stack, service: str, patient_id: uuid.UUID, expected: set[str]) -> bool:
    conn = await asyncpg.connect(stack.postgres.dsn(service, service))
    try:
        rows = await conn.fetch(
            "SELECT clinician_id FROM care_relations WHERE patient_id = $1 AND review_id IS NULL", patient_id
        )
    finally:
        await conn.close()
    return expected <= {r["clinician_id"] for r in rows}


async def prescriber(stack: Stack, patient_id: uuid.UUID | str, *learnt_by: str) -> str:
    """The clinician scheduling booked the patient's initial evaluation with (so their prescriber), once the
    services in ``learnt_by`` (default: every one that learns it) know: whom a journey acts as."""

    async def booked() -> str | None:
        async with api_client(timeout=10) as http:
            team = await http.get(url(stack, "scheduling", f"/v1/patients/{patient_id}/care-team"))
        return team.json()["prescriber_id"] if team.status_code == 200 else None

    prescriber_id: str = await eventually(booked, what="the initial evaluation booked (a prescriber)")
    await care_team_learnt(stack, patient_id, {prescriber_id}, *learnt_by)
    return prescriber_id
