"""Engagement's route policy (the table in carecoord_engagement/routes.py), every route and role, over HTTP.

One patient is registered through intake (Colorado) for the module, with a prescriber on their care team, and
a missed check-in of theirs is published as safety would: a call_patient task for the prescriber, which their
care team may work, and neither a clinician licensed in Colorado outside the team (ADR 0015) nor one licensed
elsewhere may. (A task waiting unowned in the clinicians' queue is a relation of its own, tested in
tests/integration/test_engagement_tasks.py.) Closing it is walked for the
refusals only (an allowed close would end the task the other cases use); tests/integration/
test_engagement_tasks.py closes tasks. The staff directory is about no patient: each admitted role gets
through (a clinician to their own entry) and leaves one audit row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from carecoord_contracts.safety import CheckInMissed
from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.e2e import journeys
from tests.e2e.access_cases import STATE, Endpoint, route
from tests.kafka_io import publish_event

pytestmark = pytest.mark.e2e

SERVICE = "engagement"
STAFF = frozenset({Role.CLINICIAN, Role.OPERATOR, Role.SERVICE})
# The clinician the staff-directory cases run as: a clinician reaches their own entry only.
STAFF_ID = f"dr-walk-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID
    task_id: str
    other_patient_id: uuid.UUID = field(default_factory=uuid.uuid4)  # never registered


async def _tasks(stack: Stack, patient_id: uuid.UUID) -> Any:
    async with api_client() as http:
        response = await http.get(journeys.url(stack, SERVICE, "/v1/tasks"), params={"patient_id": str(patient_id)})
    return response.json()["items"] if response.status_code == 200 else None


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    patient_id = await ac.registered_patient(services, STATE, SERVICE)
    await ac.care_team(services, patient_id, STATE, SERVICE)
    missed = CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4)
    await publish_event(services.kafka.bootstrap, "safety.reports", missed, patient_id, producer="safety")
    [task] = await eventually(lambda: _tasks(services, patient_id), what="the call_patient task")
    assert task["owner_id"] == ac.team_member(patient_id), task
    return World(services, patient_id, task["task_id"])


def _of_patient(world: World, _caller: Any) -> dict[str, str]:
    return {"patient_id": str(world.patient_id)}


PATIENT_ENDPOINTS = [
    Endpoint("tasks of the patient", route("GET", "/v1/tasks", params=_of_patient), STAFF, audited_as=("list", "task")),
    Endpoint("one task", route("GET", "/v1/tasks/{w.task_id}"), STAFF, audited_as=("read", "task")),
    Endpoint(
        "hand on",
        # Handed to the prescriber it is with already: the task stays theirs for the cases after this one.
        route(
            "PUT",
            "/v1/tasks/{w.task_id}/owner",
            lambda w, _c: {"owner_id": ac.team_member(w.patient_id), "owner_role": "clinician"},
        ),
        STAFF,
        audited_as=("reassign", "task"),
    ),
    Endpoint(
        "close",
        route("POST", "/v1/tasks/{w.task_id}/close", body={"outcome": "reached_patient"}),
        STAFF,
        audited_as=("close", "task"),
        ok=None,
    ),
]
OFFICE_ENDPOINTS = [
    Endpoint("task list", route("GET", "/v1/tasks"), STAFF),
    Endpoint(
        "staff contact, set",
        route("PUT", f"/v1/staff/{STAFF_ID}/contact", body={"email": f"{STAFF_ID}@clinic.example.org"}),
        STAFF,
        clinician_subject=STAFF_ID,
    ),
    Endpoint("staff contact, read", route("GET", f"/v1/staff/{STAFF_ID}/contact"), STAFF, clinician_subject=STAFF_ID),
]
OPEN_ENDPOINTS = [ac.FHIR_METADATA]
EVERY_ENDPOINT = PATIENT_ENDPOINTS + OFFICE_ENDPOINTS + OPEN_ENDPOINTS


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
async def test_only_licensed_clinicians_and_services_reach_a_patients_tasks_and_each_check_is_audited(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, SERVICE, endpoint, who)


@pytest.mark.parametrize("endpoint", OFFICE_ENDPOINTS, ids=ac.ids(OFFICE_ENDPOINTS))
async def test_the_routes_about_no_patient_admit_their_roles_and_are_audited(world: World, endpoint: Endpoint) -> None:
    await ac.expect_admitted(world, SERVICE, endpoint, audited=True)


async def test_the_fhir_capability_statement_admits_every_role(world: World) -> None:
    await ac.expect_admitted(world, SERVICE, OPEN_ENDPOINTS[0], audited=False)


async def test_an_operator_does_not_reach_a_task_in_the_clinicians_queue(world: World) -> None:
    operator = ac.operator()
    response = await ac.call(world.stack, SERVICE, ac.Request("GET", f"/v1/tasks/{world.task_id}"), operator)
    assert response.status_code == 403 and "operators' queue" in response.json()["detail"], response.text
    [row] = await ac.audit_rows(world.stack, SERVICE, operator)
    assert (row["action"], row["outcome"]) == ("GET refused", "denied")
