"""Callers in every role, tokens that must be refused, and the audit log, for the authorisation tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role, mint_token
from tests.conftest import eventually
from tests.e2e import intake_journeys
from tests.e2e.journeys import url

# Tokens a service must answer with 401 on every route.
UNAUTHENTICATED: dict[str, str | None] = {
    "no token": None,
    "forged": mint_token(Role.SERVICE, "forger", secret="a-secret-the-services-do-not-trust"),
    "expired": mint_token(Role.SERVICE, "late-service", ttl_s=-300),  # well past the verifier's 30 s leeway
}

_ADDRESSES = {
    "CO": ({"line1": "1 Main St", "city": "Denver", "state": "CO", "postal_code": "80202"}, "America/Denver"),
    "NY": ({"line1": "2 Broadway", "city": "New York", "state": "NY", "postal_code": "10004"}, "America/New_York"),
}


@dataclass(frozen=True)
class Caller:
    role: Role
    subject: str
    token: str


def patient(patient_id: uuid.UUID) -> Caller:
    subject = f"patient-{uuid.uuid4().hex[:8]}"
    return Caller(Role.PATIENT, subject, mint_token(Role.PATIENT, subject, patient_id=patient_id))


def clinician(*states: str) -> Caller:
    subject = f"dr-{'-'.join(states).lower() or 'none'}-{uuid.uuid4().hex[:8]}"
    return Caller(Role.CLINICIAN, subject, mint_token(Role.CLINICIAN, subject, licensed_states=states))


def operator() -> Caller:
    subject = f"operator-{uuid.uuid4().hex[:8]}"
    return Caller(Role.OPERATOR, subject, mint_token(Role.OPERATOR, subject))


def service() -> Caller:
    subject = f"service-{uuid.uuid4().hex[:8]}"
    return Caller(Role.SERVICE, subject, mint_token(Role.SERVICE, subject))


def of_role(role: Role, patient_id: uuid.UUID, state: str = "CO") -> Caller:
    """A caller in ``role`` who would pass the patient check if the role were admitted."""
    return {Role.PATIENT: lambda: patient(patient_id), Role.CLINICIAN: lambda: clinician(state), Role.OPERATOR: operator,
            Role.SERVICE: service}[role]()  # fmt: skip


async def call(
    stack: Stack, service_name: str, method: str, path: str, token: str | None, json: Any = None, params: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10, headers=headers) as http:
        return await http.request(method, url(stack, service_name, path), json=json, params=params)


async def registered_patient(stack: Stack, state: str, *learnt_by: str) -> uuid.UUID:
    """A patient registered through intake in ``state``, once each service in ``learnt_by`` knows the state."""
    address, time_zone = _ADDRESSES[state]
    body = intake_journeys.registration(address=address, state_of_residence=state, time_zone=time_zone)
    response = await intake_journeys.register(stack, body)
    assert response.status_code == 201, response.text
    patient_id = uuid.UUID(response.json()["patient_id"])
    for name in learnt_by:
        await eventually(lambda name=name: _known_state(stack, name, patient_id), what=f"{name} learnt the patient's state")
    return patient_id


async def _known_state(stack: Stack, service_name: str, patient_id: uuid.UUID) -> str | None:
    conn = await asyncpg.connect(stack.postgres.dsn(service_name, service_name))
    try:
        return await conn.fetchval(  # type: ignore[no-any-return]
            "SELECT state_of_residence FROM patient_jurisdictions WHERE patient_id = $1", patient_id
        )
    finally:
        await conn.close()


async def audit_rows(stack: Stack, service_name: str, caller: Caller) -> list[dict[str, Any]]:
    """The caller's audit rows in that service, oldest first."""
    conn = await asyncpg.connect(stack.postgres.dsn(service_name, service_name))
    try:
        rows = await conn.fetch(
            "SELECT action, resource, resource_id, patient_id, outcome, actor_role FROM audit_log WHERE actor = $1 ORDER BY id",
            caller.subject,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def assert_audited(
    stack: Stack, service_name: str, caller: Caller, action: str, resource: str, patient_id: uuid.UUID | None, outcome: str
) -> None:
    rows = await audit_rows(stack, service_name, caller)
    assert rows, f"no audit row for {caller.subject}"
    last = rows[-1]
    assert (last["action"], last["resource"], last["patient_id"], last["outcome"], last["actor_role"]) == (
        action, resource, patient_id, outcome, str(caller.role),
    ), last  # fmt: skip


# --- Table-driven route checks. A module's "world" has co_patient (resident in
# Colorado, the patient every case is about) and ny_patient (resident in New York).


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[Any], str]
    roles: frozenset[Role]
    body: Callable[[Any, Caller, uuid.UUID], Any] = lambda _w, _c, _p: None
    params: Callable[[Any, uuid.UUID], Any] = lambda _w, _p: None
    # Patient-scoped: the (action, resource) audited, and the status of an allowed call, when
    # allowing it changes nothing other cases rely on (None: the module tests it on its own).
    audited_as: tuple[str, str] | None = None
    allowed_status: int | None = None
    in_own_name: bool = False  # a clinical decision: clinician_id in the body must be the caller


OWN, OTHER, LICENSED, ELSEWHERE, IMPERSONATING, SERVICE = (
    "the patient themself", "another patient", "a clinician licensed in the patient's state", "a clinician licensed elsewhere",
    "a clinician in someone else's name", "a service",
)  # fmt: skip


def case_id(value: Any) -> str:
    return value.name if isinstance(value, Endpoint) else str(value)


def role_cases(endpoints: list[Endpoint]) -> list[tuple[Endpoint, Role]]:
    return [(e, r) for e in endpoints for r in sorted(frozenset(Role) - e.roles)]


def scope_cases(endpoints: list[Endpoint]) -> list[tuple[Endpoint, str]]:
    """Every admitted caller about the Colorado patient (allowed ones only where the endpoint says so)."""
    cases = []
    for e in endpoints:
        if e.audited_as is None:
            continue
        allowed = [OWN, LICENSED, SERVICE] if e.allowed_status else []
        denied = [OTHER, ELSEWHERE] + ([IMPERSONATING] if e.in_own_name else [])
        cases += [(e, who) for who in allowed + denied if who not in (OWN, OTHER) or Role.PATIENT in e.roles]
    return cases


async def _call_endpoint(stack: Stack, service_name: str, world: Any, endpoint: Endpoint, token: str | None, caller: Caller) -> httpx.Response:
    body, params = endpoint.body(world, caller, world.co_patient), endpoint.params(world, world.co_patient)
    return await call(stack, service_name, endpoint.method, endpoint.path(world), token, json=body, params=params)


async def expect_unauthenticated(stack: Stack, service_name: str, world: Any, endpoint: Endpoint, credential: str) -> None:
    response = await _call_endpoint(stack, service_name, world, endpoint, UNAUTHENTICATED[credential], service())
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


async def expect_role_refused(stack: Stack, service_name: str, world: Any, endpoint: Endpoint, role: Role) -> None:
    # The patient themself, a clinician licensed in Colorado: only the role is wrong.
    caller = of_role(role, world.co_patient)
    response = await _call_endpoint(stack, service_name, world, endpoint, caller.token, caller)
    assert response.status_code == 403, response.text
    assert "needs the role" in response.json()["message"]
    refusal = (await audit_rows(stack, service_name, caller))[-1]
    assert (refusal["action"], refusal["outcome"], refusal["actor_role"]) == (f"{endpoint.method} refused", "denied", str(role)), refusal


async def expect_scope(stack: Stack, service_name: str, world: Any, endpoint: Endpoint, who: str) -> httpx.Response:
    caller = {
        OWN: lambda: patient(world.co_patient),
        OTHER: lambda: patient(world.ny_patient),
        LICENSED: lambda: clinician("CO", "WA"),
        ELSEWHERE: lambda: clinician("NY", "TX"),
        IMPERSONATING: lambda: clinician("CO"),
        SERVICE: service,
    }[who]()
    assert endpoint.audited_as is not None
    action, resource = endpoint.audited_as
    if who == IMPERSONATING:
        body = {**endpoint.body(world, caller, world.co_patient), "clinician_id": "dr-somebody-else"}
        response = await call(stack, service_name, endpoint.method, endpoint.path(world), caller.token, json=body)
        assert response.status_code == 403 and "own name" in response.json()["message"], response.text
        assert (await audit_rows(stack, service_name, caller))[-1]["outcome"] == "denied"
        return response
    response = await _call_endpoint(stack, service_name, world, endpoint, caller.token, caller)
    if who in (OTHER, ELSEWHERE):
        assert response.status_code == 403, response.text
        await assert_audited(stack, service_name, caller, action, resource, world.co_patient, "denied")
        return response
    assert response.status_code == endpoint.allowed_status, response.text
    await assert_audited(stack, service_name, caller, action, resource, world.co_patient, "allowed")
    answer = response.json()
    shown = {r["patient_id"] for r in answer} if isinstance(answer, list) else {answer.get("patient_id", str(world.co_patient))}
    assert shown <= {str(world.co_patient)}, "an allowed answer shows only the patient asked about"
    return response


def route_tests(service_name: str, endpoints: list[Endpoint]) -> tuple[Callable[..., Any], ...]:
    """The three table-driven tests over ``endpoints``; a module assigns them to test_* names (it provides ``world``)."""

    @pytest.mark.parametrize("credential", list(UNAUTHENTICATED))
    @pytest.mark.parametrize("endpoint", endpoints, ids=case_id)
    async def no_forged_or_expired_token(services: Stack, world: Any, endpoint: Endpoint, credential: str) -> None:
        await expect_unauthenticated(services, service_name, world, endpoint, credential)

    @pytest.mark.parametrize(("endpoint", "role"), role_cases(endpoints), ids=case_id)
    async def role_not_admitted(services: Stack, world: Any, endpoint: Endpoint, role: Role) -> None:
        await expect_role_refused(services, service_name, world, endpoint, role)

    @pytest.mark.parametrize(("endpoint", "who"), scope_cases(endpoints), ids=case_id)
    async def own_patient_and_licensed_state(services: Stack, world: Any, endpoint: Endpoint, who: str) -> None:
        await expect_scope(services, service_name, world, endpoint, who)

    return no_forged_or_expired_token, role_not_admitted, own_patient_and_licensed_state
