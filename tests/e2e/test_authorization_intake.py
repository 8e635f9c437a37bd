"""Intake's route policy (the table in carecoord_intake/routes.py), every route and role, over HTTP.

One patient is registered (Colorado) for the module and kept short of a decision
(GAD-7 and PCL-5 are never submitted), so that every submission is accepted again; its one
PHQ-9 from the start is what the FHIR Observation read names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.e2e import access_cases as ac
from tests.e2e import intake_journeys
from tests.e2e.access_cases import (
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

SERVICE = "intake"
CLINICIAN = f"authz-dr-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID
    # A PHQ-9 of the patient's: what the FHIR Observation read names.
    assessment_id: uuid.UUID
    other_patient_id: uuid.UUID = field(default_factory=uuid.uuid4)  # never registered


@pytest_asyncio.fixture(scope="module")
async def world(services: Stack) -> World:
    patient_id = await ac.registered_patient(services, STATE)
    await ac.care_team(services, patient_id, STATE, "intake", therapist=CLINICIAN)
    submitted = await intake_journeys.step(services, str(patient_id), "POST", "/assessments", _phq9)
    assert submitted.status_code == 201, submitted.text
    return World(services, patient_id, uuid.UUID(submitted.json()["assessment_id"]))


async def _blood_pressure(world: World, _caller: Caller) -> Request:
    body = {"systolic": 121, "diastolic": 79, "measured_at": datetime.now(UTC).isoformat()}
    return Request("POST", f"/v1/patients/{world.patient_id}/blood-pressure", body)


async def _registration(_world: World, _caller: Caller) -> Request:
    return Request("POST", "/v1/patients", intake_journeys.registration(state_of_residence=STATE))


_phq9 = {"instrument": "phq9", "answers": [1, 1, 1, 1, 1, 1, 1, 1, 0]}
_screening = {"answers": intake_journeys.NO_CONDITIONS}
_coverage = {"kind": "self_pay"}
_override = {"clinician_id": CLINICIAN, "outcome": "eligible", "reason": "reviewed with the patient"}
_OVERRIDE = route("POST", "/v1/patients/{w.patient_id}/eligibility/override", _override)

PATIENT_ENDPOINTS = [
    Endpoint("patient", route("GET", "/v1/patients/{w.patient_id}"), PATIENT_CARE, audited_as=("read", "patient")),
    Endpoint(
        "intake status", route("GET", "/v1/patients/{w.patient_id}/intake"), PATIENT_CARE, audited_as=("read", "intake")
    ),
    Endpoint(
        "assessment",
        route("POST", "/v1/patients/{w.patient_id}/assessments", _phq9),
        PATIENT_CARE,
        audited_as=("submit", "assessment"),
        ok=201,
    ),
    Endpoint(
        "medical screening",
        route("POST", "/v1/patients/{w.patient_id}/medical-screening", _screening),
        PATIENT_CARE,
        audited_as=("submit", "medical-screening"),
        ok=201,
    ),
    Endpoint("blood pressure", _blood_pressure, PATIENT_CARE, audited_as=("submit", "blood-pressure"), ok=201),
    Endpoint(
        "coverage",
        route("PUT", "/v1/patients/{w.patient_id}/coverage", _coverage),
        PATIENT_CARE,
        audited_as=("declare", "coverage"),
        ok=201,
    ),
    # Admitted, a clinician meets the rule: there is no needs-review decision to override (409).
    Endpoint(
        "eligibility override",
        _OVERRIDE,
        CLINICIAN_OR_SERVICE,
        audited_as=("decide", "eligibility"),
        ok=409,
        clinician_subject=CLINICIAN,
    ),
]
FHIR_ENDPOINTS = [
    Endpoint(
        "FHIR Patient search",
        route("GET", "/fhir/R4/Patient", params=lambda w, _c: {"_id": str(w.patient_id)}),
        PATIENT_CARE,
        audited_as=("read", "patient-demographics"),
    ),
    Endpoint(
        "FHIR Patient read",
        route("GET", "/fhir/R4/Patient/{w.patient_id}"),
        PATIENT_CARE,
        audited_as=("read", "patient-demographics"),
    ),
    Endpoint(
        "FHIR Observation search",
        route("GET", "/fhir/R4/Observation", params=lambda w, _c: {"patient": f"Patient/{w.patient_id}"}),
        PATIENT_CARE,
        audited_as=("read", "intake"),
    ),
    Endpoint(
        "FHIR Observation read",
        route("GET", "/fhir/R4/Observation/{w.assessment_id}"),
        PATIENT_CARE,
        audited_as=("read", "intake"),
    ),
]
FHIR_METADATA = Endpoint("FHIR metadata", route("GET", "/fhir/R4/metadata"), ac.ALL_ROLES)
REGISTRATION = Endpoint("register", _registration, CLINICIAN_OR_SERVICE, ok=201)
DEMOGRAPHICS = Endpoint(
    "claim demographics",
    route("GET", "/v1/internal/patients/{w.patient_id}/claim-demographics"),
    frozenset({Role.SERVICE}),
)
# Consent (ADR 0016). The module's patient never signs, so an admitted caller meets a rule each time
# (an outdated version, nothing to withdraw: 409) and nothing changes for the other cases.
_outdated = {"document": "ketamine_treatment", "document_version": "2025.1.0"}
CONSENT_ENDPOINTS = [
    Endpoint("consent documents", route("GET", "/v1/consent-documents"), ac.ALL_ROLES),
    Endpoint("consent document", route("GET", "/v1/consent-documents/ketamine_treatment/2026.12.0"), ac.ALL_ROLES),
    Endpoint(
        "patient consents",
        route("GET", "/v1/patients/{w.patient_id}/consents"),
        PATIENT_CARE,
        audited_as=("read", "consents"),
    ),
    Endpoint(
        "sign consent",
        route("POST", "/v1/patients/{w.patient_id}/consents", _outdated),
        frozenset({Role.PATIENT}),
        audited_as=("sign", "consent"),
        ok=409,
    ),
    Endpoint(
        "withdraw consent",
        route("POST", "/v1/patients/{w.patient_id}/consents/telehealth/withdrawal"),
        frozenset({Role.PATIENT, Role.CLINICIAN}),
        audited_as=("withdraw", "consent"),
        ok=409,
    ),
]
CONTACT = Endpoint(
    "patient contact",
    route("GET", "/v1/patients/{w.patient_id}/contact"),
    frozenset({Role.SERVICE}),
)
EVERY_ENDPOINT = [
    *PATIENT_ENDPOINTS,
    *FHIR_ENDPOINTS,
    *CONSENT_ENDPOINTS,
    REGISTRATION,
    DEMOGRAPHICS,
    CONTACT,
    FHIR_METADATA,
]


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
async def test_only_the_patient_and_licensed_clinicians_reach_a_patients_intake_and_each_check_is_audited(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, SERVICE, endpoint, who)


async def test_every_role_reads_the_fhir_capability_statement_which_names_no_patient(world: World) -> None:
    await ac.expect_admitted(world, SERVICE, FHIR_METADATA, audited=False)


async def test_a_clinician_decides_only_in_their_own_name(world: World) -> None:
    colleague = ac.clinician(STATE, subject=ac.team_member(world.patient_id))  # on the team, in another's name
    response = await ac.call(world.stack, SERVICE, await _OVERRIDE(world, colleague), colleague)
    assert response.status_code == 403, response.text
    assert "own name" in response.json()["detail"]


async def test_billing_reads_claim_demographics_as_a_service_and_the_read_is_audited(world: World) -> None:
    billing = ac.service(ac.fresh_subject("billing"))
    response = await ac.call(world.stack, SERVICE, await DEMOGRAPHICS.request(world, billing), billing)
    assert response.status_code == 200, response.text
    assert response.json()["patient_id"] == str(world.patient_id)
    [row] = await ac.audit_rows(world.stack, SERVICE, billing)
    assert (row["action"], row["resource"], row["patient_id"], row["outcome"]) == (
        "read",
        "claim-demographics",
        world.patient_id,
        "allowed",
    )


async def test_engagement_reads_a_patients_contact_as_a_service_and_the_read_is_audited(world: World) -> None:
    engagement = ac.service(ac.fresh_subject("engagement"))
    response = await ac.call(world.stack, SERVICE, await CONTACT.request(world, engagement), engagement)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["patient_id"] == str(world.patient_id)
    assert "@" in body["email"] and body["phone"] and body["time_zone"] and body["state_of_residence"] == STATE
    [row] = await ac.audit_rows(world.stack, SERVICE, engagement)
    assert (row["action"], row["resource"], row["patient_id"], row["outcome"]) == (
        "read",
        "patient-contact",
        world.patient_id,
        "allowed",
    )


async def test_a_service_registers_any_patient_and_the_registration_is_audited(world: World) -> None:
    backend = ac.service(ac.fresh_subject("patient-app"))
    response = await ac.call(world.stack, SERVICE, await _registration(world, backend), backend)
    assert response.status_code == 201, response.text
    [row] = await ac.audit_rows(world.stack, SERVICE, backend)
    assert (row["action"], str(row["patient_id"]), row["outcome"]) == (
        "register",
        response.json()["patient_id"],
        "allowed",
    )


async def test_a_clinician_registers_patients_only_in_states_they_are_licensed_in(world: World) -> None:
    licensed, elsewhere = ac.clinician(STATE), ac.clinician(ELSEWHERE)
    request = await _registration(world, licensed)
    refused = await ac.call(world.stack, SERVICE, request, elsewhere)
    assert refused.status_code == 403, refused.text
    assert "licensed" in refused.json()["detail"]

    created = await ac.call(world.stack, SERVICE, request, licensed)
    assert created.status_code == 201, "the refused attempt registered nothing: the same external id is new here"
    [row] = await ac.audit_rows(world.stack, SERVICE, licensed)
    assert (row["action"], str(row["patient_id"]), row["outcome"], row["basis"]) == (
        "register",
        created.json()["patient_id"],
        "allowed",
        "registrar",
    )


async def test_a_clinician_does_not_learn_of_a_patient_elsewhere_through_a_known_external_id(world: World) -> None:
    body = intake_journeys.registration(state_of_residence=ELSEWHERE, time_zone="America/New_York")
    body["address"] = {**body["address"], "state": ELSEWHERE}
    first = await ac.call(world.stack, SERVICE, Request("POST", "/v1/patients", body), ac.service("patient-app"))
    assert first.status_code == 201, first.text
    colorado = {**body, "state_of_residence": STATE}
    clinician = ac.clinician(STATE)
    again = await ac.call(world.stack, SERVICE, Request("POST", "/v1/patients", colorado), clinician)
    assert again.status_code == 403, again.text
    assert first.json()["patient_id"] not in again.text
    [row] = await ac.audit_rows(world.stack, SERVICE, clinician)
    assert (str(row["patient_id"]), row["outcome"]) == (first.json()["patient_id"], "denied")
