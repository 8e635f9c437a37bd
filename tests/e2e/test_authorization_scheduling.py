"""Scheduling's route policy (the table in carecoord_scheduling/routes.py), every route and role, over HTTP.

One patient is registered through intake (Colorado) and one clinician licensed
there is set up for the whole module; each case that changes an appointment
books its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.auth import api_client
from tests.e2e import access_cases as ac
from tests.e2e import journeys
from tests.e2e.access_cases import (
    ALL_ROLES,
    CLINICIAN_OR_SERVICE,
    ELSEWHERE,
    PATIENT_CARE,
    STATE,
    Caller,
    Endpoint,
    Request,
    route,
)

pytestmark = pytest.mark.e2e

SERVICE = "scheduling"
ZONE = "America/Denver"
# One clinician id for the module, so that "the appointment's own clinician" can be a token's subject.
CLINICIAN = f"authz-dr-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID
    clinician_id: str
    other_patient_id: uuid.UUID = field(default_factory=uuid.uuid4)  # never registered

    async def open_slot(self) -> str:
        async with api_client() as http:
            response = await http.get(
                journeys.url(self.stack, SERVICE, f"/v1/patients/{self.patient_id}/open-slots"),
                params={"appointment_type": "follow_up", "clinician_id": self.clinician_id, "limit": "1"},
            )
        assert response.status_code == 200, response.text
        return response.json()[0]["starts_at"]  # type: ignore[no-any-return]

    async def booked(self) -> str:
        async with api_client() as http:
            response = await http.post(journeys.url(self.stack, SERVICE, "/v1/appointments"), json=await self.booking())
        assert response.status_code == 201, response.text
        return response.json()["appointment_id"]  # type: ignore[no-any-return]

    async def booking(self) -> dict[str, Any]:
        return {
            "patient_id": str(self.patient_id),
            "clinician_id": self.clinician_id,
            "appointment_type": "follow_up",
            "starts_at": await self.open_slot(),
        }


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    async with api_client() as http:
        created = await http.put(
            journeys.url(services, SERVICE, f"/v1/clinicians/{CLINICIAN}"),
            json={
                "role": "psychiatric_clinician",
                "time_zone": ZONE,
                "licensed_states": [STATE],
                "weekly_availability": journeys.ALL_WEEK,
            },
        )
        assert created.status_code == 200, created.text
    patient_id = await ac.registered_patient(services, STATE, SERVICE)
    await ac.care_team(services, patient_id, STATE, SERVICE, therapist=CLINICIAN)
    return World(services, patient_id, CLINICIAN)


def _on_appointment(action: str, body: Any = None, *, fresh: bool, reschedule: bool = False) -> Any:
    """A request about an appointment; ``fresh``: one booked for this request, as the call may change it."""
    shared: dict[str, str] = {}

    async def request(world: World, _caller: Caller) -> Request:
        if fresh or "id" not in shared:
            shared["id"] = await world.booked()
        path = f"/v1/appointments/{shared['id']}{action}"
        if reschedule:
            return Request("POST", path, {"starts_at": await world.open_slot()})
        return Request("GET" if not action else "POST", path, body)

    return request


async def _fhir_appointment(world: World, _caller: Caller) -> Request:
    """The FHIR read of one appointment (booked once for the module's cases; reading changes nothing)."""
    if world.patient_id not in _read_appointment:
        _read_appointment[world.patient_id] = await world.booked()
    return Request("GET", f"/fhir/R4/Appointment/{_read_appointment[world.patient_id]}")


_read_appointment: dict[uuid.UUID, str] = {}


async def _booking(world: World, _caller: Caller) -> Request:
    return Request("POST", "/v1/appointments", await world.booking())


PATIENT_ENDPOINTS = [
    Endpoint(
        "open slots",
        route("GET", "/v1/patients/{w.patient_id}/open-slots", params={"appointment_type": "follow_up"}),
        PATIENT_CARE,
        audited_as=("read", "open-slots"),
    ),
    Endpoint(
        "schedule",
        route("GET", "/v1/patients/{w.patient_id}/appointments"),
        PATIENT_CARE,
        audited_as=("read", "appointments"),
    ),
    Endpoint("book", _booking, PATIENT_CARE, audited_as=("book", "appointment"), ok=201),
    Endpoint("one appointment", _on_appointment("", fresh=False), PATIENT_CARE, audited_as=("read", "appointment")),
    Endpoint(
        "reschedule",
        _on_appointment("/reschedule", fresh=True, reschedule=True),
        PATIENT_CARE,
        audited_as=("reschedule", "appointment"),
    ),
    Endpoint(
        "cancel",
        _on_appointment("/cancel", {"reason": "patient_request"}, fresh=True),
        PATIENT_CARE,
        audited_as=("cancel", "appointment"),
    ),
    # An admitted caller is past authorization and meets the rule: a session not started yet cannot be settled (409).
    Endpoint(
        "complete",
        _on_appointment("/complete", fresh=False),
        CLINICIAN_OR_SERVICE,
        audited_as=("complete", "appointment"),
        ok=409,
        clinician_subject=CLINICIAN,
    ),
    Endpoint(
        "no-show",
        _on_appointment("/no-show", fresh=False),
        CLINICIAN_OR_SERVICE,
        audited_as=("no-show", "appointment"),
        ok=409,
        clinician_subject=CLINICIAN,
    ),
    Endpoint(
        "FHIR Appointment search",
        route("GET", "/fhir/R4/Appointment", params=lambda w, _c: {"patient": f"Patient/{w.patient_id}"}),
        PATIENT_CARE,
        audited_as=("read", "appointments"),
    ),
    Endpoint(
        "FHIR Appointment read",
        _fhir_appointment,
        PATIENT_CARE,
        audited_as=("read", "appointment"),
    ),
    Endpoint(
        "received events",
        route("GET", "/v1/patients/{w.patient_id}/received-events"),
        frozenset({Role.OPERATOR, Role.CLINICIAN, Role.SERVICE}),
        audited_as=("read", "received-events"),
    ),
    Endpoint(
        "care team", route("GET", "/v1/patients/{w.patient_id}/care-team"), ALL_ROLES, audited_as=("read", "care-team")
    ),
    # The module's clinician is the therapist already: an admitted caller changes nothing the other cases rely on.
    Endpoint(
        "change care team",
        route("PUT", "/v1/patients/{w.patient_id}/care-team", lambda w, _c: {"therapist_id": w.clinician_id}),
        frozenset({Role.OPERATOR, Role.CLINICIAN, Role.SERVICE}),
        audited_as=("change", "care-team"),
    ),
]

_windows = [{"weekday": 0, "start": "09:00", "end": "17:00"}]
_exception = {"starts_at": "2031-01-06T09:00:00+00:00", "ends_at": "2031-01-06T10:00:00+00:00", "reason": "time_off"}
_clinician_body = {"role": "therapist", "time_zone": ZONE, "licensed_states": [STATE], "weekly_availability": _windows}


async def _exception_to_remove(world: Any, _caller: Caller) -> Request:
    path = f"/v1/clinicians/{world.clinician_id}/exceptions"
    async with api_client() as http:
        added = await http.post(journeys.url(world.stack, SERVICE, path), json=_exception)
    assert added.status_code == 201, added.text
    return Request("DELETE", f"{path}/{added.json()['exception_id']}")


CLINICIAN_ENDPOINTS = {
    "replace clinician": (route("PUT", "/v1/clinicians/{w.clinician_id}", _clinician_body), 200),
    "replace availability": (route("PUT", "/v1/clinicians/{w.clinician_id}/availability", _windows), 200),
    "add exception": (route("POST", "/v1/clinicians/{w.clinician_id}/exceptions", _exception), 201),
    "list exceptions": (route("GET", "/v1/clinicians/{w.clinician_id}/exceptions"), 200),
    "remove exception": (_exception_to_remove, 204),
}
OWN_RECORD = [
    Endpoint(name, request, CLINICIAN_OR_SERVICE, ok=ok) for name, (request, ok) in CLINICIAN_ENDPOINTS.items()
]
DIRECTORY = [
    Endpoint("clinicians", route("GET", "/v1/clinicians", params={"state": STATE}), ALL_ROLES),
    # Not patient data either: what the FHIR API serves.
    Endpoint("FHIR metadata", route("GET", "/fhir/R4/metadata"), ALL_ROLES),
    Endpoint("one clinician", route("GET", "/v1/clinicians/{w.clinician_id}"), ALL_ROLES),
]
EVERY_ENDPOINT = PATIENT_ENDPOINTS + OWN_RECORD + DIRECTORY


@pytest.mark.parametrize(("endpoint", "credential"), ac.credential_cases(EVERY_ENDPOINT), ids=str)
async def test_a_call_without_a_valid_token_is_refused_with_401(
    world: ac.World, endpoint: Endpoint, credential: str
) -> None:
    await ac.expect_unauthenticated(world, SERVICE, endpoint, credential)


@pytest.mark.parametrize(("endpoint", "role"), ac.role_cases(EVERY_ENDPOINT), ids=str)
async def test_a_role_the_route_does_not_admit_is_refused_with_403(
    world: ac.World, endpoint: Endpoint, role: Role
) -> None:
    await ac.expect_role_refused(world, SERVICE, endpoint, role)


@pytest.mark.parametrize(("endpoint", "who"), ac.scope_cases(EVERY_ENDPOINT), ids=str)
async def test_only_the_patient_and_licensed_clinicians_reach_a_patients_schedule_and_each_check_is_audited(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, SERVICE, endpoint, who)


@pytest.mark.parametrize("endpoint", DIRECTORY, ids=ac.ids(DIRECTORY))
async def test_every_role_reads_the_clinician_directory(world: World, endpoint: Endpoint) -> None:
    await ac.expect_admitted(world, SERVICE, endpoint, audited=False)


@pytest.mark.parametrize("endpoint", OWN_RECORD, ids=ac.ids(OWN_RECORD))
async def test_a_clinician_manages_only_their_own_record_and_a_service_any(world: World, endpoint: Endpoint) -> None:
    me, other = ac.clinician(STATE), ac.fresh_subject("dr-other")
    for clinician in (me.subject, other):
        await _create_clinician(world, clinician)
    mine = await endpoint.request(_Own(world.stack, me.subject), me)
    theirs = await endpoint.request(_Own(world.stack, other), me)

    response = await ac.call(world.stack, SERVICE, mine, me)
    assert response.status_code == endpoint.ok, response.text
    response = await ac.call(world.stack, SERVICE, theirs, me)
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["detail"]
    response = await ac.call(world.stack, SERVICE, theirs, ac.service())
    assert response.status_code == endpoint.ok, response.text
    allowed, refused = await ac.audit_rows(
        world.stack, SERVICE, me
    )  # the refused attempt on another's record changed nothing
    assert (allowed["outcome"], allowed["patient_id"]) == ("allowed", None)
    assert allowed["resource_id"] in {me.subject, mine.path.rsplit("/", 1)[-1]}
    assert (refused["action"], refused["outcome"], refused["patient_id"]) == (
        f"{theirs.method} refused",
        "denied",
        None,
    )


@dataclass(frozen=True)
class _Own:
    """A world around another clinician than the module's (whose record these tests change)."""

    stack: Stack
    clinician_id: str


async def _create_clinician(world: World, clinician_id: str) -> None:
    async with api_client() as http:
        response = await http.put(
            journeys.url(world.stack, SERVICE, f"/v1/clinicians/{clinician_id}"), json=_clinician_body
        )
    assert response.status_code == 200, response.text


async def test_a_clinician_cannot_claim_a_licence_their_token_does_not_vouch_for(world: World) -> None:
    own = ac.fresh_subject("dr-own")
    body = {**_clinician_body, "licensed_states": [STATE, ELSEWHERE]}
    request = Request("PUT", f"/v1/clinicians/{own}", body)
    response = await ac.call(world.stack, SERVICE, request, ac.clinician(STATE, subject=own))
    assert response.status_code == 403, response.text
    assert ELSEWHERE in response.json()["detail"]
    response = await ac.call(world.stack, SERVICE, request, ac.clinician(STATE, ELSEWHERE, subject=own))
    assert response.status_code == 200, response.text


async def test_a_patient_books_only_in_their_own_name(world: World) -> None:
    booking = await world.booking()
    response = await ac.call(
        world.stack, SERVICE, Request("POST", "/v1/appointments", booking), ac.patient(uuid.uuid4())
    )
    assert response.status_code == 403, response.text
    response = await ac.call(
        world.stack, SERVICE, Request("POST", "/v1/appointments", booking), ac.patient(world.patient_id)
    )
    assert response.status_code == 201, response.text
    assert response.json()["patient_id"] == str(world.patient_id)


async def test_only_the_appointments_own_clinician_settles_it(world: World) -> None:
    appointment_id = await world.booked()
    colleague = ac.clinician(STATE, subject=ac.team_member(world.patient_id))  # on the team, not the appointment's
    response = await ac.call(
        world.stack, SERVICE, Request("POST", f"/v1/appointments/{appointment_id}/complete"), colleague
    )
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["detail"]


async def test_an_unknown_appointment_is_404_for_an_admitted_caller(world: World) -> None:
    response = await ac.call(
        world.stack,
        SERVICE,
        Request("POST", f"/v1/appointments/{uuid.uuid4()}/cancel", {}),
        ac.patient(world.patient_id),
    )
    assert response.status_code == 404, response.text


async def test_changing_the_care_team_changes_who_reaches_the_chart_and_is_audited(world: World) -> None:
    patient_id = await ac.registered_patient(world.stack, STATE, SERVICE, "intake")
    await ac.care_team(world.stack, patient_id, STATE, "intake")
    before, newcomer = (
        ac.team_member(patient_id),
        await journeys.clinician(world.stack, "psychiatric_clinician", STATE, ZONE),
    )
    chart = Request("GET", f"/v1/patients/{patient_id}")
    as_newcomer = ac.clinician(STATE, subject=newcomer)
    refused = await ac.call(world.stack, "intake", chart, as_newcomer)
    assert refused.status_code == 403 and ac.NOT_RELATED in refused.json()["detail"], refused.text

    operator = ac.operator()
    change = Request("PUT", f"/v1/patients/{patient_id}/care-team", {"prescriber_id": newcomer})
    changed = await ac.call(world.stack, SERVICE, change, operator)
    assert changed.status_code == 200, changed.text
    [row] = await ac.audit_rows(world.stack, SERVICE, operator)
    assert (row["action"], row["resource"], row["patient_id"], row["outcome"], row["basis"]) == (
        "change",
        "care-team",
        patient_id,
        "allowed",
        "operational",
    )
    await journeys.care_team_learnt(world.stack, patient_id, {newcomer}, "intake")

    allowed = await ac.call(world.stack, "intake", chart, as_newcomer)
    assert allowed.status_code == 200, allowed.text
    assert (await ac.audit_rows(world.stack, "intake", as_newcomer))[-1]["basis"] == "care_team:prescriber"
    gone = await ac.call(world.stack, "intake", chart, ac.clinician(STATE, subject=before))
    assert gone.status_code == 403, "the prescriber replaced no longer reaches the chart"
