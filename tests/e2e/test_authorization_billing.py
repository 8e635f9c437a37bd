"""Billing's route policy (the table in carecoord_billing/api.py), every route and role, over HTTP.

One self-pay patient is registered through intake (Colorado) for the module; a
visit of theirs is completed (published as scheduling would) so that there is an
invoice to pay, a cent at a time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from carecoord_shared.contracts.common import AppointmentType
from carecoord_shared.contracts.scheduling import AppointmentCompleted
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import authorization as authz
from tests.e2e import intake_journeys, journeys
from tests.e2e.authorization import PATIENT_CARE, STATE, Endpoint, Request
from tests.kafka_io import publish_event

pytestmark = pytest.mark.e2e

SERVICE = "billing"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: str
    invoice_id: str


async def _get(stack: Stack, path: str) -> Any:
    async with api_client() as http:
        response = await http.get(journeys.url(stack, SERVICE, path))
    return response.json() if response.status_code == 200 else None


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    registered = await intake_journeys.register(services, intake_journeys.registration(state_of_residence=STATE))
    assert registered.status_code == 201, registered.text
    patient_id = registered.json()["patient_id"]
    declared = await intake_journeys.step(services, patient_id, "PUT", "/coverage", {"kind": "self_pay"})
    assert declared.status_code == 201, declared.text
    started = datetime.now(UTC) - timedelta(days=1)
    visit = AppointmentCompleted(
        appointment_id=uuid.uuid4(), appointment_type=AppointmentType.follow_up, clinician_id="dr-authz",
        started_at=started, ended_at=started + timedelta(minutes=30),
    )  # fmt: skip
    await publish_event(services.kafka.bootstrap, "scheduling.appointments", visit, uuid.UUID(patient_id), "scheduling")
    [invoice] = await eventually(lambda: _get(services, f"/v1/patients/{patient_id}/invoices"), what="the visit invoiced")
    return World(services, patient_id, invoice["invoice_id"])


def _static(method: str, path: str, body: Any = None) -> Any:
    async def prepare(world: World) -> Request:
        return Request(method, path.format(p=world.patient_id), body)

    return prepare


async def _payment(world: World) -> Request:
    # A cent at a time: every admitted payment is a real one, and the invoice stays open for the next.
    body = {"payment_id": str(uuid.uuid4()), "amount_cents": 1, "method": "card"}
    return Request("POST", f"/v1/invoices/{world.invoice_id}/payments", body)


PATIENT_ENDPOINTS = [
    Endpoint("coverage", _static("GET", "/v1/patients/{p}/coverage"), PATIENT_CARE),
    Endpoint("charges", _static("GET", "/v1/patients/{p}/charges"), PATIENT_CARE),
    Endpoint("claims", _static("GET", "/v1/patients/{p}/claims"), PATIENT_CARE),
    Endpoint("invoices", _static("GET", "/v1/patients/{p}/invoices"), PATIENT_CARE),
    Endpoint("pay", _payment, frozenset({Role.PATIENT, Role.SERVICE}), ok=201),
    Endpoint("received events", _static("GET", "/v1/patients/{p}/received-events"), frozenset({Role.OPERATOR, Role.CLINICIAN, Role.SERVICE})),
]
OFFICE_ENDPOINTS = [
    Endpoint("denial queue", _static("GET", "/v1/denials"), frozenset({Role.SERVICE}), patient_scoped=False),
    Endpoint("exchange now", _static("POST", "/v1/clearinghouse/exchange"), frozenset({Role.OPERATOR, Role.SERVICE}), patient_scoped=False),
]
EVERY_ENDPOINT = PATIENT_ENDPOINTS + OFFICE_ENDPOINTS


(
    test_a_call_without_a_valid_token_is_refused_with_401,
    test_a_role_the_route_does_not_admit_is_refused_with_403,
    test_only_the_patient_and_licensed_clinicians_reach_a_patients_billing_and_each_check_is_audited,
) = authz.route_policy_tests(SERVICE, EVERY_ENDPOINT, PATIENT_ENDPOINTS)


@pytest.mark.parametrize("endpoint", OFFICE_ENDPOINTS, ids=authz.ids(OFFICE_ENDPOINTS))
async def test_the_billing_office_routes_admit_their_roles_and_are_audited(world: World, endpoint: Endpoint) -> None:
    await authz.admits_its_roles(world.stack, SERVICE, endpoint, world, world.patient_id, STATE, audited=True)


async def test_paying_an_unknown_invoice_is_404_for_an_admitted_caller(world: World) -> None:
    own = authz.token_as(Role.PATIENT, authz.subject("patient"), patient_id=world.patient_id)
    body = {"payment_id": str(uuid.uuid4()), "amount_cents": 1, "method": "card"}
    response = await authz.call(world.stack, SERVICE, Request("POST", f"/v1/invoices/{uuid.uuid4()}/payments", body), own)
    assert response.status_code == 404, response.text


async def test_a_patient_pays_only_their_own_invoice_and_the_refusal_pays_nothing(world: World) -> None:
    before = (await _get(world.stack, f"/v1/patients/{world.patient_id}/invoices"))[0]["paid_cents"]
    someone_else = authz.token_as(Role.PATIENT, authz.subject("patient"), patient_id=uuid.uuid4())
    response = await authz.call(world.stack, SERVICE, await _payment(world), someone_else)
    assert response.status_code == 403, response.text
    assert (await _get(world.stack, f"/v1/patients/{world.patient_id}/invoices"))[0]["paid_cents"] == before
