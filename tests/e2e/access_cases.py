"""Callers in every role, tokens that must be refused, and the audit log, for the authorisation tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

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
