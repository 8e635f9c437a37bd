"""Billing's route policy (the table in carecoord_billing/routes.py), every route and role, over HTTP.

One self-pay patient is registered through intake (Colorado) for the module; a
visit of theirs is completed (published as scheduling would) so that there is an
invoice to pay, a cent at a time. The FHIR reads (/fhir/R4) are walked beside the
reads of the same data: the patient's Coverage (search and read by id) and Claim search
(a self-pay patient has no claim to read by id: tests/e2e/test_fhir_billing.py reads one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from carecoord_contracts.common import AppointmentType
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.e2e import intake_journeys, journeys
from tests.e2e.access_cases import PATIENT_CARE, STATE, Caller, Endpoint, Request, route
from tests.kafka_io import publish_event

pytestmark = pytest.mark.e2e

SERVICE = "billing"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID
    invoice_id: str
    coverage_id: str
    other_patient_id: uuid.UUID = field(default_factory=uuid.uuid4)  # never registered


async def _get(stack: Stack, path: str) -> Any:
    async with api_client() as http:
        response = await http.get(journeys.url(stack, SERVICE, path))
    return response.json() if response.status_code == 200 else None


async def _invoices(stack: Stack, patient_id: uuid.UUID) -> list[dict[str, Any]] | None:
    """The patient's invoices (one page: a test patient has far fewer), None until there is one."""
    page = await _get(stack, f"/v1/patients/{patient_id}/invoices")
    return page["items"] if page else None


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    patient_id = await ac.registered_patient(services, STATE)
    await ac.care_team(services, patient_id, STATE, SERVICE)
    declared = await intake_journeys.step(services, str(patient_id), "PUT", "/coverage", {"kind": "self_pay"})
    assert declared.status_code == 201, declared.text
    started = datetime.now(UTC) - timedelta(days=1)
    visit = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.follow_up,
        clinician_id="dr-authz",
        started_at=started,
        ended_at=started + timedelta(minutes=30),
    )
    await publish_event(services.kafka.bootstrap, "scheduling.appointments", visit, patient_id, "scheduling")
    [invoice] = await eventually(lambda: _invoices(services, patient_id), what="the visit invoiced")
    coverage = await eventually(
        lambda: _get(services, f"/v1/patients/{patient_id}/coverage"), what="the coverage declared"
    )
    return World(services, patient_id, invoice["invoice_id"], coverage["coverage_id"])


def _of_patient(world: World, _caller: Caller) -> dict[str, str]:
    return {"patient": str(world.patient_id)}


async def _payment(world: World, _caller: Caller) -> Request:
    # A cent at a time: every admitted payment is a real one, and the invoice stays open for the next.
    body = {"payment_id": str(uuid.uuid4()), "amount_cents": 1, "method": "card"}
    return Request("POST", f"/v1/invoices/{world.invoice_id}/payments", body)


PATIENT_ENDPOINTS = [
    Endpoint(
        "coverage", route("GET", "/v1/patients/{w.patient_id}/coverage"), PATIENT_CARE, audited_as=("read", "coverage")
    ),
    Endpoint(
        "charges", route("GET", "/v1/patients/{w.patient_id}/charges"), PATIENT_CARE, audited_as=("read", "charges")
    ),
    Endpoint("claims", route("GET", "/v1/patients/{w.patient_id}/claims"), PATIENT_CARE, audited_as=("read", "claims")),
    Endpoint(
        "invoices", route("GET", "/v1/patients/{w.patient_id}/invoices"), PATIENT_CARE, audited_as=("read", "invoices")
    ),
    Endpoint(
        "FHIR Coverage search",
        route("GET", "/fhir/R4/Coverage", params=_of_patient),
        PATIENT_CARE,
        audited_as=("read", "coverage"),
    ),
    Endpoint(
        "FHIR Coverage read",
        route("GET", "/fhir/R4/Coverage/{w.coverage_id}"),
        PATIENT_CARE,
        audited_as=("read", "coverage"),
    ),
    Endpoint(
        "FHIR Claim search",
        route("GET", "/fhir/R4/Claim", params=_of_patient),
        PATIENT_CARE,
        audited_as=("read", "claims"),
    ),
    Endpoint("pay", _payment, frozenset({Role.PATIENT, Role.SERVICE}), audited_as=("pay", "invoice"), ok=201),
    Endpoint(
        "received events",
        route("GET", "/v1/patients/{w.patient_id}/received-events"),
        frozenset({Role.OPERATOR, Role.CLINICIAN, Role.SERVICE}),
        audited_as=("read", "received-events"),
    ),
]
OFFICE_ENDPOINTS = [
    Endpoint("denial queue", route("GET", "/v1/denials"), frozenset({Role.SERVICE})),
    Endpoint("exchange now", route("POST", "/v1/clearinghouse/exchange"), frozenset({Role.OPERATOR, Role.SERVICE})),
]
# What the FHIR API serves, about no patient: every role may ask, and it is not audited.
OPEN_ENDPOINTS = [Endpoint("FHIR metadata", route("GET", "/fhir/R4/metadata"), ac.ALL_ROLES)]
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
async def test_only_the_patient_and_licensed_clinicians_reach_a_patients_billing_and_each_check_is_audited(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, SERVICE, endpoint, who)


@pytest.mark.parametrize("endpoint", OFFICE_ENDPOINTS, ids=ac.ids(OFFICE_ENDPOINTS))
async def test_the_billing_office_routes_admit_their_roles_and_are_audited(world: World, endpoint: Endpoint) -> None:
    await ac.expect_admitted(world, SERVICE, endpoint, audited=True)


async def test_the_fhir_capability_statement_admits_every_role(world: World) -> None:
    await ac.expect_admitted(world, SERVICE, OPEN_ENDPOINTS[0], audited=False)


async def test_paying_an_unknown_invoice_is_404_for_an_admitted_caller(world: World) -> None:
    body = {"payment_id": str(uuid.uuid4()), "amount_cents": 1, "method": "card"}
    response = await ac.call(
        world.stack,
        SERVICE,
        Request("POST", f"/v1/invoices/{uuid.uuid4()}/payments", body),
        ac.patient(world.patient_id),
    )
    assert response.status_code == 404, response.text


async def _paid_cents(world: World) -> Any:
    invoices = await _invoices(world.stack, world.patient_id)
    assert invoices, "the world's invoice"
    return invoices[0]["paid_cents"]


async def test_a_patient_pays_only_their_own_invoice_and_the_refusal_pays_nothing(world: World) -> None:
    before = await _paid_cents(world)
    someone_else = ac.patient(uuid.uuid4())
    response = await ac.call(world.stack, SERVICE, await _payment(world, someone_else), someone_else)
    assert response.status_code == 403, response.text
    assert await _paid_cents(world) == before
