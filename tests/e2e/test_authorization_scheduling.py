"""Scheduling's route policy (the table in carecoord_scheduling/api.py), every route and role, over HTTP.

One patient is registered through intake (Colorado) and one clinician licensed
there is set up for the whole module; each case that changes an appointment
books its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import authorization as authz
from tests.e2e import intake_journeys, journeys
from tests.e2e.authorization import CLINICIAN_OR_SERVICE, ELSEWHERE, PATIENT_CARE, STATE, Endpoint, Request

pytestmark = pytest.mark.e2e

SERVICE = "scheduling"
ZONE = "America/Denver"
# One clinician id for the module, so that "the appointment's own clinician" can be a token's subject.
CLINICIAN = f"authz-dr-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: str
    clinician_id: str

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
        return {"patient_id": self.patient_id, "clinician_id": self.clinician_id, "appointment_type": "follow_up", "starts_at": await self.open_slot()}


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    registered = await intake_journeys.register(services, intake_journeys.registration(state_of_residence=STATE, time_zone=ZONE))
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["patient_id"]
    async with api_client() as http:
        created = await http.put(
            journeys.url(services, SERVICE, f"/v1/clinicians/{CLINICIAN}"),
            json={"role": "psychiatric_clinician", "time_zone": ZONE, "licensed_states": [STATE], "weekly_availability": journeys.ALL_WEEK},
        )
        assert created.status_code == 200, created.text

        async def known() -> bool:
            response = await http.get(
                journeys.url(services, SERVICE, f"/v1/patients/{patient_id}/open-slots"), params={"appointment_type": "follow_up"}
            )
            return response.status_code == 200

        await eventually(known, what="scheduling learnt the patient's state from intake")
    return World(services, patient_id, CLINICIAN)


def _static(method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
    async def prepare(world: World) -> Request:
        return Request(method, path.format(p=world.patient_id, c=world.clinician_id), body, params)

    return prepare


def _on_appointment(action: str, body: Any = None, *, fresh: bool, reschedule: bool = False) -> Any:
    """A request about an appointment; ``fresh``: one booked for this request, as the call may change it."""
    shared: dict[str, str] = {}

    async def prepare(world: World) -> Request:
        if fresh or "id" not in shared:
            shared["id"] = await world.booked()
        path = f"/v1/appointments/{shared['id']}{action}"
        if reschedule:
            return Request("POST", path, {"starts_at": await world.open_slot()})
        return Request("GET" if not action else "POST", path, body)

    return prepare


async def _booking(world: World) -> Request:
    return Request("POST", "/v1/appointments", await world.booking())


PATIENT_ENDPOINTS = [
    Endpoint("open slots", _static("GET", "/v1/patients/{p}/open-slots", params={"appointment_type": "follow_up"}), PATIENT_CARE),
    Endpoint("schedule", _static("GET", "/v1/patients/{p}/appointments"), PATIENT_CARE),
    Endpoint("book", _booking, PATIENT_CARE, ok=201),
    Endpoint("one appointment", _on_appointment("", fresh=False), PATIENT_CARE),
    Endpoint("reschedule", _on_appointment("/reschedule", fresh=True, reschedule=True), PATIENT_CARE),
    Endpoint("cancel", _on_appointment("/cancel", {"reason": "patient_request"}, fresh=True), PATIENT_CARE),
    # An admitted caller is past authorization and meets the rule: a session not started yet cannot be settled (409).
    Endpoint("complete", _on_appointment("/complete", fresh=False), CLINICIAN_OR_SERVICE, ok=409, clinician_subject=CLINICIAN),
    Endpoint("no-show", _on_appointment("/no-show", fresh=False), CLINICIAN_OR_SERVICE, ok=409, clinician_subject=CLINICIAN),
    Endpoint("received events", _static("GET", "/v1/patients/{p}/received-events"), frozenset({Role.OPERATOR, Role.CLINICIAN, Role.SERVICE})),
]

_windows = [{"weekday": 0, "start": "09:00", "end": "17:00"}]
_exception = {"starts_at": "2031-01-06T09:00:00+00:00", "ends_at": "2031-01-06T10:00:00+00:00", "reason": "time_off"}
_clinician_body = {"role": "therapist", "time_zone": ZONE, "licensed_states": [STATE], "weekly_availability": _windows}


async def _exception_to_remove(world: Any) -> Request:
    path = f"/v1/clinicians/{world.clinician_id}/exceptions"
    async with api_client() as http:
        added = await http.post(journeys.url(world.stack, SERVICE, path), json=_exception)
    assert added.status_code == 201, added.text
    return Request("DELETE", f"{path}/{added.json()['exception_id']}")


CLINICIAN_ENDPOINTS = {
    "replace clinician": (_static("PUT", "/v1/clinicians/{c}", _clinician_body), 200),
    "replace availability": (_static("PUT", "/v1/clinicians/{c}/availability", _windows), 200),
    "add exception": (_static("POST", "/v1/clinicians/{c}/exceptions", _exception), 201),
    "list exceptions": (_static("GET", "/v1/clinicians/{c}/exceptions"), 200),
    "remove exception": (_exception_to_remove, 204),
}
OWN_RECORD = [Endpoint(name, prepare, CLINICIAN_OR_SERVICE, ok=ok, patient_scoped=False) for name, (prepare, ok) in CLINICIAN_ENDPOINTS.items()]
DIRECTORY = [
    Endpoint("clinicians", _static("GET", "/v1/clinicians", params={"state": STATE}), authz.ALL_ROLES, patient_scoped=False),
    Endpoint("one clinician", _static("GET", "/v1/clinicians/{c}"), authz.ALL_ROLES, patient_scoped=False),
]
EVERY_ENDPOINT = PATIENT_ENDPOINTS + OWN_RECORD + DIRECTORY


(
    test_a_call_without_a_valid_token_is_refused_with_401,
    test_a_role_the_route_does_not_admit_is_refused_with_403,
    test_only_the_patient_and_licensed_clinicians_reach_a_patients_schedule_and_each_check_is_audited,
) = authz.route_policy_tests(SERVICE, EVERY_ENDPOINT, PATIENT_ENDPOINTS)


@pytest.mark.parametrize("endpoint", DIRECTORY, ids=authz.ids(DIRECTORY))
async def test_every_role_reads_the_clinician_directory(world: World, endpoint: Endpoint) -> None:
    await authz.admits_its_roles(world.stack, SERVICE, endpoint, world, world.patient_id, STATE, audited=False)


@pytest.mark.parametrize("endpoint", OWN_RECORD, ids=authz.ids(OWN_RECORD))
async def test_a_clinician_manages_only_their_own_record_and_a_service_any(world: World, endpoint: Endpoint) -> None:
    own, other = authz.subject("dr-own"), authz.subject("dr-other")
    for clinician in (own, other):
        await _create_clinician(world, clinician)
    mine = await endpoint.prepare(_Own(world.stack, own))
    theirs = await endpoint.prepare(_Own(world.stack, other))

    response = await authz.call(world.stack, SERVICE, mine, authz.token_as(Role.CLINICIAN, own, states=(STATE,)))
    assert response.status_code == endpoint.ok, response.text
    response = await authz.call(world.stack, SERVICE, theirs, authz.token_as(Role.CLINICIAN, own, states=(STATE,)))
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["message"]
    response = await authz.call(world.stack, SERVICE, theirs, authz.token_as(Role.SERVICE, authz.subject("back-office")))
    assert response.status_code == endpoint.ok, response.text
    allowed, refused = await authz.audit_of(world.stack, SERVICE, own)  # the refused attempt on another's record changed nothing
    assert (allowed["outcome"], allowed["patient_id"]) == ("allowed", None)
    assert allowed["resource_id"] in {own, mine.path.rsplit("/", 1)[-1]}
    assert (refused["action"], refused["outcome"], refused["patient_id"]) == (f"{theirs.method} refused", "denied", None)


@dataclass(frozen=True)
class _Own:
    """A world around another clinician than the module's (whose record these tests change)."""

    stack: Stack
    clinician_id: str
    patient_id: str = ""


async def _create_clinician(world: World, clinician_id: str) -> None:
    async with api_client() as http:
        response = await http.put(journeys.url(world.stack, SERVICE, f"/v1/clinicians/{clinician_id}"), json=_clinician_body)
    assert response.status_code == 200, response.text


async def test_a_clinician_cannot_claim_a_licence_their_token_does_not_vouch_for(world: World) -> None:
    own = authz.subject("dr-own")
    body = {**_clinician_body, "licensed_states": [STATE, ELSEWHERE]}
    request = Request("PUT", f"/v1/clinicians/{own}", body)
    response = await authz.call(world.stack, SERVICE, request, authz.token_as(Role.CLINICIAN, own, states=(STATE,)))
    assert response.status_code == 403, response.text
    assert ELSEWHERE in response.json()["message"]
    response = await authz.call(world.stack, SERVICE, request, authz.token_as(Role.CLINICIAN, own, states=(STATE, ELSEWHERE)))
    assert response.status_code == 200, response.text


async def test_a_patient_books_only_in_their_own_name(world: World) -> None:
    booking = await world.booking()
    someone_else = authz.token_as(Role.PATIENT, authz.subject("patient"), patient_id=uuid.uuid4())
    response = await authz.call(world.stack, SERVICE, Request("POST", "/v1/appointments", booking), someone_else)
    assert response.status_code == 403, response.text
    own = authz.token_as(Role.PATIENT, authz.subject("patient"), patient_id=world.patient_id)
    response = await authz.call(world.stack, SERVICE, Request("POST", "/v1/appointments", booking), own)
    assert response.status_code == 201, response.text
    assert response.json()["patient_id"] == world.patient_id


async def test_only_the_appointments_own_clinician_settles_it(world: World) -> None:
    appointment_id = await world.booked()
    colleague = authz.token_as(Role.CLINICIAN, authz.subject("dr-colleague"), states=(STATE,))
    response = await authz.call(world.stack, SERVICE, Request("POST", f"/v1/appointments/{appointment_id}/complete"), colleague)
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["message"]


async def test_an_unknown_appointment_is_404_for_an_admitted_caller(world: World) -> None:
    own = authz.token_as(Role.PATIENT, authz.subject("patient"), patient_id=world.patient_id)
    response = await authz.call(world.stack, SERVICE, Request("POST", f"/v1/appointments/{uuid.uuid4()}/cancel", {}), own)
    assert response.status_code == 404, response.text
