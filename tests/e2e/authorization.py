"""What every per-service authorization test tries, over the real HTTP APIs.

An ``Endpoint`` says how to make one request to a route (``prepare`` may create
what the request needs, e.g. a fresh appointment to cancel), the roles the
route admits and the status an admitted caller gets. The checks below are the
same for every service: without a valid token -> 401; a role not admitted ->
403; for a patient-scoped route, the patient and a licensed clinician are let
through while another patient and a clinician licensed elsewhere get 403, each
case leaving its audit row (allowed or denied) in the service's audit_log.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role, mint_token
from tests.auth import bearer
from tests.e2e.journeys import url

FORGED = mint_token(Role.SERVICE, "carecoord-test-suite", secret="a-secret-no-carecoord-service-trusts-at-all")
EXPIRED = mint_token(Role.SERVICE, "carecoord-test-suite", ttl_s=-3600)
UNAUTHENTICATED = {"no token": None, "forged token": FORGED, "expired token": EXPIRED}
ALL_ROLES = frozenset(Role)
PATIENT_CARE = frozenset({Role.PATIENT, Role.CLINICIAN, Role.SERVICE})
CLINICIAN_OR_SERVICE = frozenset({Role.CLINICIAN, Role.SERVICE})
# Each module's patient lives in STATE (served by the local configuration); ELSEWHERE is another state.
STATE, ELSEWHERE = "CO", "NY"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class Endpoint:
    name: str
    prepare: Callable[[Any], Awaitable[Request]]
    admits: frozenset[Role]
    # What an admitted caller gets: the status proves the request went past authorization.
    ok: int = 200
    # The route is about one patient: the patient and licensed clinicians only.
    patient_scoped: bool = True
    # Where an admitted clinician must also be the token's subject (their own record, their appointment).
    clinician_subject: str | None = None
    tags: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return self.name


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.name for e in endpoints]


async def call(stack: Stack, service: str, request: Request, token: str | None) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10, headers=bearer(token) if token else {}) as http:
        return await http.request(request.method, url(stack, service, request.path), json=request.body, params=request.params)


def token_as(role: Role, subject: str, *, patient_id: uuid.UUID | str | None = None, states: tuple[str, ...] = ()) -> str:
    return mint_token(role, subject, patient_id=patient_id, licensed_states=states)


def subject(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def some_token(role: Role, patient_id: uuid.UUID | str, state: str, clinician: str | None) -> str:
    """A token of ``role`` that would pass every check but the role: the patient themself, a licensed clinician."""
    if role is Role.PATIENT:
        return token_as(role, subject("patient"), patient_id=patient_id)
    if role is Role.CLINICIAN:
        return token_as(role, clinician or subject("clinician"), states=(state,))
    return token_as(role, subject(str(role)))


async def refuses_unauthenticated(stack: Stack, service: str, endpoint: Endpoint, world: Any) -> None:
    request = await endpoint.prepare(world)
    for case, token in UNAUTHENTICATED.items():
        response = await call(stack, service, request, token)
        assert response.status_code == 401, (endpoint.name, case, response.text)
        assert response.headers.get("www-authenticate") == "Bearer", (endpoint.name, case)


async def refuses_other_roles(stack: Stack, service: str, endpoint: Endpoint, world: Any, patient_id: Any, state: str) -> None:
    refused = ALL_ROLES - endpoint.admits
    for role in sorted(refused):
        request = await endpoint.prepare(world)
        response = await call(stack, service, request, some_token(role, patient_id, state, endpoint.clinician_subject))
        assert response.status_code == 403, (endpoint.name, role, response.text)
        assert "role" in response.json()["message"], (endpoint.name, role, response.text)


async def audit_of(stack: Stack, service: str, actor: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.dsn(service))
    try:
        return await conn.fetch("SELECT * FROM audit_log WHERE actor = $1 ORDER BY id", actor)
    finally:
        await conn.close()


async def scoped_to_the_patient(
    stack: Stack, service: str, endpoint: Endpoint, world: Any, patient_id: Any, state: str, elsewhere: str
) -> None:
    """The patient themself and a clinician licensed in their state are let through; another patient and a
    clinician licensed only elsewhere are refused; every one of these checks is in the audit log."""
    clinician = endpoint.clinician_subject
    cases: list[tuple[str, Role, str, dict[str, Any], int]] = []
    if Role.PATIENT in endpoint.admits:
        cases += [
            ("the patient", Role.PATIENT, subject("patient"), {"patient_id": patient_id}, endpoint.ok),
            ("another patient", Role.PATIENT, subject("patient"), {"patient_id": uuid.uuid4()}, 403),
        ]
    if Role.CLINICIAN in endpoint.admits:
        cases += [
            ("a licensed clinician", Role.CLINICIAN, clinician or subject("clinician"), {"states": (state,)}, endpoint.ok),
            ("a clinician licensed elsewhere", Role.CLINICIAN, clinician or subject("clinician"), {"states": (elsewhere,)}, 403),
        ]
    assert cases, f"{endpoint.name} admits neither patients nor clinicians: not patient-scoped"
    for case, role, who, claims, expected in cases:
        request = await endpoint.prepare(world)
        before = len(await audit_of(stack, service, who))
        response = await call(stack, service, request, token_as(role, who, **claims))
        assert response.status_code == expected, (endpoint.name, case, response.text)
        rows = (await audit_of(stack, service, who))[before:]
        outcome = "denied" if expected == 403 else "allowed"
        assert [(r["patient_id"], r["outcome"], r["actor_role"]) for r in rows] == [(uuid.UUID(str(patient_id)), outcome, str(role))], (
            endpoint.name,
            case,
            [dict(r) for r in rows],
        )


async def admits_its_roles(stack: Stack, service: str, endpoint: Endpoint, world: Any, patient_id: Any, state: str, *, audited: bool) -> None:
    """A route about no single patient: every admitted role gets through (and, ``audited``, leaves a row naming no patient)."""
    for role in sorted(endpoint.admits):
        who = endpoint.clinician_subject if role is Role.CLINICIAN and endpoint.clinician_subject else subject(str(role))
        claims: dict[str, Any] = {"patient_id": patient_id} if role is Role.PATIENT else {"states": (state,)} if role is Role.CLINICIAN else {}
        response = await call(stack, service, await endpoint.prepare(world), token_as(role, who, **claims))
        assert response.status_code == endpoint.ok, (endpoint.name, role, response.text)
        if audited:
            rows = await audit_of(stack, service, who)
            assert [(r["outcome"], r["patient_id"]) for r in rows] == [("allowed", None)], (endpoint.name, role)


def route_policy_tests(service: str, every: list[Endpoint], patient_scoped: list[Endpoint]) -> tuple[Any, Any, Any]:
    """The three tests every service's module runs over its endpoints (assign them to test_ names there).
    They use the module's ``world`` fixture: anything with ``stack`` and a ``patient_id`` living in STATE."""

    @pytest.mark.parametrize("endpoint", every, ids=ids(every))
    async def unauthenticated(world: Any, endpoint: Endpoint) -> None:
        await refuses_unauthenticated(world.stack, service, endpoint, world)

    refusing = [e for e in every if ALL_ROLES - e.admits]

    @pytest.mark.parametrize("endpoint", refusing, ids=ids(refusing))
    async def other_roles(world: Any, endpoint: Endpoint) -> None:
        await refuses_other_roles(world.stack, service, endpoint, world, world.patient_id, STATE)

    @pytest.mark.parametrize("endpoint", patient_scoped, ids=ids(patient_scoped))
    async def scoped(world: Any, endpoint: Endpoint) -> None:
        await scoped_to_the_patient(world.stack, service, endpoint, world, world.patient_id, STATE, ELSEWHERE)

    return unauthenticated, other_roles, scoped
