"""Intake's route policy (the table in carecoord_intake/api.py), every route and role, over HTTP.

One patient is registered (Colorado) for the module and kept short of a decision
(GAD-7 and PCL-5 are never submitted), so that every submission is accepted again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.e2e import authorization as authz
from tests.e2e import intake_journeys
from tests.e2e.authorization import CLINICIAN_OR_SERVICE, ELSEWHERE, PATIENT_CARE, STATE, Endpoint, Request

pytestmark = pytest.mark.e2e

SERVICE = "intake"
CLINICIAN = f"authz-dr-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: str


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    registered = await intake_journeys.register(services, intake_journeys.registration(state_of_residence=STATE))
    assert registered.status_code == 201, registered.text
    return World(services, registered.json()["patient_id"])


def _on_patient(method: str, path: str, body: Any = None) -> Any:
    async def prepare(world: World) -> Request:
        return Request(method, f"/v1/patients/{world.patient_id}{path}", body)

    return prepare


async def _blood_pressure(world: World) -> Request:
    body = {"systolic": 121, "diastolic": 79, "measured_at": datetime.now(UTC).isoformat()}
    return Request("POST", f"/v1/patients/{world.patient_id}/blood-pressure", body)


async def _registration(_world: World) -> Request:
    return Request("POST", "/v1/patients", intake_journeys.registration(state_of_residence=STATE))


_phq9 = {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 0]}
_screening = {"answers": intake_journeys.NO_CONDITIONS}
_coverage = {"kind": "self_pay"}
_override = {"clinician_id": CLINICIAN, "outcome": "eligible", "reason": "reviewed with the patient"}

PATIENT_ENDPOINTS = [
    Endpoint("patient", _on_patient("GET", ""), PATIENT_CARE),
    Endpoint("intake status", _on_patient("GET", "/intake"), PATIENT_CARE),
    Endpoint("assessment", _on_patient("POST", "/assessments", _phq9), PATIENT_CARE, ok=201),
    Endpoint("medical screening", _on_patient("POST", "/medical-screening", _screening), PATIENT_CARE, ok=201),
    Endpoint("blood pressure", _blood_pressure, PATIENT_CARE, ok=201),
    Endpoint("coverage", _on_patient("PUT", "/coverage", _coverage), PATIENT_CARE, ok=201),
    # Admitted, a clinician meets the rule: there is no needs-review decision to override (409).
    Endpoint("eligibility override", _on_patient("POST", "/eligibility/override", _override), CLINICIAN_OR_SERVICE, ok=409, clinician_subject=CLINICIAN),
]
REGISTRATION = Endpoint("register", _registration, CLINICIAN_OR_SERVICE, ok=201, patient_scoped=False)


async def _internal(world: World) -> Request:
    return Request("GET", f"/v1/internal/patients/{world.patient_id}/claim-demographics")


DEMOGRAPHICS = Endpoint("claim demographics", _internal, frozenset({Role.SERVICE}), patient_scoped=False)
EVERY_ENDPOINT = [*PATIENT_ENDPOINTS, REGISTRATION, DEMOGRAPHICS]


(
    test_a_call_without_a_valid_token_is_refused_with_401,
    test_a_role_the_route_does_not_admit_is_refused_with_403,
    test_only_the_patient_and_licensed_clinicians_reach_a_patients_intake_and_each_check_is_audited,
) = authz.route_policy_tests(SERVICE, EVERY_ENDPOINT, PATIENT_ENDPOINTS)


async def test_a_clinician_decides_only_in_their_own_name(world: World) -> None:
    colleague = authz.token_as(Role.CLINICIAN, authz.subject("dr-colleague"), states=(STATE,))
    response = await authz.call(world.stack, SERVICE, await _on_patient("POST", "/eligibility/override", _override)(world), colleague)
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["message"]


async def test_billing_reads_claim_demographics_as_a_service_and_the_read_is_audited(world: World) -> None:
    billing = authz.subject("billing")
    response = await authz.call(world.stack, SERVICE, await _internal(world), authz.token_as(Role.SERVICE, billing))
    assert response.status_code == 200, response.text
    assert response.json()["patient_id"] == world.patient_id
    [row] = await authz.audit_of(world.stack, SERVICE, billing)
    assert (row["action"], row["resource"], str(row["patient_id"]), row["outcome"]) == ("read", "claim-demographics", world.patient_id, "allowed")


async def test_a_service_registers_any_patient_and_the_registration_is_audited(world: World) -> None:
    backend = authz.subject("patient-app")
    response = await authz.call(world.stack, SERVICE, await _registration(world), authz.token_as(Role.SERVICE, backend))
    assert response.status_code == 201, response.text
    [row] = await authz.audit_of(world.stack, SERVICE, backend)
    assert (row["action"], str(row["patient_id"]), row["outcome"]) == ("register", response.json()["patient_id"], "allowed")


async def test_a_clinician_registers_patients_only_in_states_they_are_licensed_in(world: World) -> None:
    request = await _registration(world)
    elsewhere = authz.token_as(Role.CLINICIAN, authz.subject("dr-ny"), states=(ELSEWHERE,))
    refused = await authz.call(world.stack, SERVICE, request, elsewhere)
    assert refused.status_code == 403, refused.text
    assert "licensed" in refused.json()["message"]

    licensed = authz.subject("dr-co")
    created = await authz.call(world.stack, SERVICE, request, authz.token_as(Role.CLINICIAN, licensed, states=(STATE,)))
    assert created.status_code == 201, "the refused attempt registered nothing: the same external id is new here"
    [row] = await authz.audit_of(world.stack, SERVICE, licensed)
    assert (row["action"], str(row["patient_id"]), row["outcome"]) == ("register", created.json()["patient_id"], "allowed")


async def test_a_clinician_does_not_learn_of_a_patient_elsewhere_through_a_known_external_id(world: World) -> None:
    body = intake_journeys.registration(state_of_residence=ELSEWHERE, time_zone="America/New_York")
    body["address"] = {**body["address"], "state": ELSEWHERE}
    first = await authz.call(world.stack, SERVICE, Request("POST", "/v1/patients", body), authz.token_as(Role.SERVICE, "patient-app"))
    assert first.status_code == 201, first.text
    colorado = {**body, "state_of_residence": STATE}
    clinician = authz.subject("dr-co")
    again = await authz.call(world.stack, SERVICE, Request("POST", "/v1/patients", colorado), authz.token_as(Role.CLINICIAN, clinician, states=(STATE,)))
    assert again.status_code == 403, again.text
    assert first.json()["patient_id"] not in again.text
    [row] = await authz.audit_of(world.stack, SERVICE, clinician)
    assert (str(row["patient_id"]), row["outcome"]) == (first.json()["patient_id"], "denied")
