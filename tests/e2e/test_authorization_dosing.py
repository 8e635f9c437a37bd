"""Who may call dosing's HTTP API: every route, every role, the patient's own data, licensed states, the audit log.

The policy is the table in carecoord_dosing.routes's docstring; each case asserts the real status code."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_contracts.common import AppointmentType
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.e2e.access_cases import CLINICIAN_OR_SERVICE, PATIENT_CARE, Caller, Endpoint, Request, route
from tests.kafka_io import publish_event
from tests.plans import COURSE

pytestmark = pytest.mark.e2e

DOSING = "dosing"


@dataclass(frozen=True)
class World:
    stack: Stack
    patient_id: uuid.UUID  # resident in Colorado, with an active plan
    other_patient_id: uuid.UUID  # resident in New York
    plan_id: uuid.UUID
    proposal_id: uuid.UUID  # the starting dose's (approved at activation)


@pytest.fixture(scope="module")
async def world(services: Stack) -> World:
    co, ny = await ac.registered_patient(services, "CO", DOSING), await ac.registered_patient(services, "NY", DOSING)
    await ac.care_team(services, co, "CO", DOSING)
    system = ac.service()
    plan = await _plan_call(services, system, "POST", "/v1/plans", 201, patient_id=str(co), **COURSE)
    active = await _plan_call(services, system, "POST", f"/v1/plans/{plan['plan_id']}/activate", 200)
    [starting] = active["proposals"]
    return World(services, co, ny, uuid.UUID(plan["plan_id"]), uuid.UUID(starting["proposal_id"]))


async def _plan_call(
    stack: Stack, caller: Caller, method: str, path: str, expected: int, **body: Any
) -> dict[str, Any]:
    body = {"clinician_id": caller.subject, **body} if method == "POST" else {}
    response = await ac.call(stack, DOSING, Request(method, path, body or None), caller)
    assert response.status_code == expected, response.text
    return response.json()  # type: ignore[no-any-return]


async def _authorise_a_session(world: World, caller: Caller) -> Request:
    return Request("POST", f"/v1/dosing-sessions/{uuid.uuid4()}/authorise", {"patient_id": str(world.patient_id)})


ENDPOINTS = [
    # Decisions change the plan: their allowed cases are in test_plan_decisions.
    Endpoint(
        "create a plan",
        route("POST", "/v1/plans", lambda w, c: {"patient_id": str(w.patient_id), "clinician_id": c.subject, **COURSE}),
        CLINICIAN_OR_SERVICE,
        audited_as=("create", "plan"),
        ok=None,
        in_own_name=True,
    ),
    Endpoint(
        "activate a plan",
        route("POST", "/v1/plans/{w.plan_id}/activate", lambda w, c: {"clinician_id": c.subject}),
        CLINICIAN_OR_SERVICE,
        audited_as=("activate", "plan"),
        ok=None,
        in_own_name=True,
    ),
    Endpoint(
        "discontinue a plan",
        route(
            "POST",
            "/v1/plans/{w.plan_id}/discontinue",
            lambda w, c: {"clinician_id": c.subject, "reason": "patient_request"},
        ),
        CLINICIAN_OR_SERVICE,
        audited_as=("discontinue", "plan"),
        ok=None,
        in_own_name=True,
    ),
    Endpoint("read a plan", route("GET", "/v1/plans/{w.plan_id}"), PATIENT_CARE, audited_as=("read", "plan")),
    Endpoint(
        "read a patient's plan",
        route("GET", "/v1/patients/{w.patient_id}/plan"),
        PATIENT_CARE,
        audited_as=("read", "plan"),
    ),
    Endpoint(
        "approve a dose",
        route("POST", "/v1/dose-proposals/{w.proposal_id}/approve", lambda w, c: {"clinician_id": c.subject}),
        CLINICIAN_OR_SERVICE,
        audited_as=("approve", "dose-proposal"),
        ok=None,
        in_own_name=True,
    ),
    # A fresh appointment each call: asking changes nothing but records the refusal (no pre-dose reading).
    Endpoint(
        "authorise a dosing session",
        _authorise_a_session,
        CLINICIAN_OR_SERVICE,
        audited_as=("authorise", "dosing-session"),
    ),
    Endpoint(
        "search the patient's CarePlans (FHIR)",
        route("GET", "/fhir/R4/CarePlan", params=lambda w, _c: {"patient": f"Patient/{w.patient_id}"}),
        PATIENT_CARE,
        audited_as=("read", "plan"),
    ),
    Endpoint(
        "read a CarePlan (FHIR)",
        route("GET", "/fhir/R4/CarePlan/{w.plan_id}"),
        PATIENT_CARE,
        audited_as=("read", "plan"),
    ),
    Endpoint(
        "read a patient's outcomes",
        route("GET", "/v1/patients/{w.patient_id}/outcomes"),
        PATIENT_CARE,
        audited_as=("read", "outcomes"),
    ),
]
# The program's figures: aggregates about no single patient (operators too, with small cells withheld).
PROGRAM_ENDPOINTS = [
    Endpoint(
        "read the program's outcomes",
        route("GET", "/v1/outcomes"),
        frozenset({Role.CLINICIAN, Role.OPERATOR, Role.SERVICE}),
    ),
]
EVERY_ENDPOINT = ENDPOINTS + PROGRAM_ENDPOINTS + [ac.FHIR_METADATA]


# 401 without, with a forged or an expired token; 403 for each role not admitted; for patient-scoped
# routes the patient themself and a licensed clinician allowed, another patient and a clinician
# licensed elsewhere refused; the audit row of each patient check.
@pytest.mark.parametrize(("endpoint", "credential"), ac.credential_cases(EVERY_ENDPOINT), ids=str)
async def test_no_forged_or_expired_token_gets_401(world: ac.World, endpoint: Endpoint, credential: str) -> None:
    await ac.expect_unauthenticated(world, DOSING, endpoint, credential)


@pytest.mark.parametrize(("endpoint", "role"), ac.role_cases(EVERY_ENDPOINT), ids=str)
async def test_a_role_not_admitted_gets_403(world: ac.World, endpoint: Endpoint, role: Role) -> None:
    await ac.expect_role_refused(world, DOSING, endpoint, role)


@pytest.mark.parametrize(("endpoint", "who"), ac.scope_cases(ENDPOINTS), ids=str)
async def test_patient_data_reaches_only_the_patient_and_licensed_clinicians(
    world: ac.World, endpoint: Endpoint, who: str
) -> None:
    await ac.expect_scope(world, DOSING, endpoint, who)


@pytest.mark.parametrize("endpoint", PROGRAM_ENDPOINTS, ids=ac.ids(PROGRAM_ENDPOINTS))
async def test_the_program_figures_admit_their_roles_and_are_audited(world: World, endpoint: Endpoint) -> None:
    await ac.expect_admitted(world, DOSING, endpoint, audited=True)


async def test_every_role_reads_what_fhir_is_served_here_unaudited(world: World) -> None:
    await ac.expect_admitted(world, DOSING, ac.FHIR_METADATA, audited=False)


async def test_an_operator_reads_program_figures_with_small_cells_withheld(world: World) -> None:
    response = await ac.call(world.stack, DOSING, Request("GET", "/v1/outcomes"), ac.operator())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["suppressed_below"] == 11 and body["scope"] == "every state"
    counts = [f["denominator"] for f in body["figures"]] + [w["patients"] for w in body["weeks"]]
    assert not [n for n in counts if n is not None and 0 < n < 11]
    clinician = (await ac.call(world.stack, DOSING, Request("GET", "/v1/outcomes"), ac.clinician("CO"))).json()
    assert clinician["suppressed_below"] is None and clinician["scope"].startswith("the caller's patients")


async def test_plan_decisions_are_a_licensed_clinicians_in_their_own_name(services: Stack) -> None:
    patient_id = await ac.registered_patient(services, "CO", DOSING)
    await ac.care_team(services, patient_id, "CO", DOSING)
    dr, elsewhere = ac.clinician("CO", subject=ac.team_member(patient_id)), ac.clinician("NY")

    body = {"patient_id": str(patient_id), "clinician_id": elsewhere.subject, **COURSE}
    refused = await ac.call(services, DOSING, Request("POST", "/v1/plans", body), elsewhere)
    assert refused.status_code == 403
    await ac.assert_audited(services, DOSING, elsewhere, "create", "plan", patient_id, "denied")
    plan = await _plan_call(services, dr, "POST", "/v1/plans", 201, patient_id=str(patient_id), **COURSE)
    await ac.assert_audited(services, DOSING, dr, "create", "plan", patient_id, "allowed")
    await _plan_call(services, elsewhere, "POST", f"/v1/plans/{plan['plan_id']}/activate", 403)
    await ac.assert_audited(services, DOSING, elsewhere, "activate", "plan", patient_id, "denied")
    active = await _plan_call(services, dr, "POST", f"/v1/plans/{plan['plan_id']}/activate", 200)
    assert active["status"] == "active" and active["proposals"][0]["approved_by"] == dr.subject

    proposal = await _completed_session(services, patient_id, plan["plan_id"])
    await _plan_call(services, elsewhere, "POST", f"/v1/dose-proposals/{proposal}/approve", 403)
    await ac.assert_audited(services, DOSING, elsewhere, "approve", "dose-proposal", patient_id, "denied")
    approved = await _plan_call(services, dr, "POST", f"/v1/dose-proposals/{proposal}/approve", 200)
    assert approved["approved_dose_mg"] is not None
    await ac.assert_audited(services, DOSING, dr, "approve", "dose-proposal", patient_id, "allowed")

    await _plan_call(
        services, elsewhere, "POST", f"/v1/plans/{plan['plan_id']}/discontinue", 403, reason="patient_request"
    )
    ended = await _plan_call(
        services, dr, "POST", f"/v1/plans/{plan['plan_id']}/discontinue", 200, reason="patient_request"
    )
    assert ended["status"] == "discontinued"
    assert [r["action"] for r in await ac.audit_rows(services, DOSING, dr)] == [
        "create",
        "activate",
        "approve",
        "discontinue",
    ]
    await _plan_call(services, dr, "POST", f"/v1/plans/{uuid.uuid4()}/activate", 404)


async def test_a_service_may_take_every_plan_decision_for_any_patient(services: Stack) -> None:
    patient_id = uuid.uuid4()  # a service is not limited to patients whose state dosing knows
    system = ac.service()
    plan = await _plan_call(services, system, "POST", "/v1/plans", 201, patient_id=str(patient_id), **COURSE)
    await _plan_call(services, system, "POST", f"/v1/plans/{plan['plan_id']}/activate", 200)
    proposal = await _completed_session(services, patient_id, plan["plan_id"])
    await _plan_call(services, system, "POST", f"/v1/dose-proposals/{proposal}/approve", 200)
    await _plan_call(
        services, system, "POST", f"/v1/plans/{plan['plan_id']}/discontinue", 200, reason="patient_request"
    )
    rows = await ac.audit_rows(services, DOSING, system)
    assert [(r["action"], r["patient_id"], r["outcome"]) for r in rows] == [
        (action, patient_id, "allowed") for action in ("create", "activate", "approve", "discontinue")
    ]


async def test_a_clinician_asking_about_a_patient_of_unknown_state_is_refused_and_told_why(services: Stack) -> None:
    stranger, dr = uuid.uuid4(), ac.clinician("CO")
    response = await ac.call(services, DOSING, Request("GET", f"/v1/patients/{stranger}/plan"), dr)
    assert response.status_code == 403
    assert "does not know the patient's state" in response.json()["detail"]
    await ac.assert_audited(services, DOSING, dr, "read", "plan", stranger, "denied")


async def _completed_session(stack: Stack, patient_id: uuid.UUID, plan_id: str) -> str:
    """Scheduling says a dosing session took place: dosing proposes the next dose; returns the proposal id."""
    completed = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-lee",
        started_at=datetime.now(UTC) - timedelta(hours=3),
        ended_at=datetime.now(UTC) - timedelta(hours=1),
        plan_id=plan_id,
    )
    await publish_event(stack.kafka.bootstrap, "scheduling.appointments", completed, patient_id, producer="scheduling")

    async def pending() -> str | None:
        plan = await _plan_call(stack, ac.service(), "GET", f"/v1/plans/{plan_id}", 200)
        return next((p["proposal_id"] for p in plan["proposals"] if p["status"] == "proposed"), None)

    return await eventually(pending, what="the next dose proposed")  # type: ignore[no-any-return]
