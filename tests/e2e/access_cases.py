"""What every per-service authorisation test tries, over the real HTTP APIs, and the audit rows it leaves.

An ``Endpoint`` says how to make one request to a route (its ``request`` may create what the request
needs, e.g. a fresh appointment to cancel, and may name the caller in the body), the roles the route
admits and the status an admitted caller gets. ``credential_cases``, ``role_cases`` and ``scope_cases``
list the checks that are the same for every service (each module parametrizes its three tests with them),
one test case each: without a valid token -> 401; each role not admitted -> 403 and a
"<METHOD> refused" audit row; for a patient-scoped route the patient themself, a member of the patient's
care team licensed in their state and a service are let through (the allowed row saying on what basis:
self, care_team:..., service), while another patient, a clinician licensed only elsewhere and one licensed
in the patient's state but outside their care team (ADR 0015) get 403, each check leaving exactly its one
audit row (allowed or denied).

A module provides a ``world`` fixture (see ``World``): every case is about ``world.patient_id``,
a patient living in STATE, whose care team it sets with ``care_team`` (the prescriber is
``team_member(patient_id)``; an Endpoint's ``clinician_subject`` joins as the therapist).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import httpx

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role, mint_token
from tests.auth import bearer, clinician_token, operator_token, patient_token, service_token
from tests.conftest import eventually
from tests.e2e import intake_journeys
from tests.e2e.journeys import ALL_WEEK, join_care_team, url

# Tokens a service must answer with 401 on every route. The forgery claims the suite's own account.
UNAUTHENTICATED: dict[str, str | None] = {
    "no token": None,
    "forged token": mint_token(
        Role.SERVICE, "carecoord-test-suite", secret="a-secret-no-carecoord-service-trusts-at-all"
    ),
    "expired token": mint_token(Role.SERVICE, "carecoord-test-suite", ttl_s=-3600),  # well past the verifier's leeway
}
ALL_ROLES = frozenset(Role)
PATIENT_CARE = frozenset({Role.PATIENT, Role.CLINICIAN, Role.SERVICE})
CLINICIAN_OR_SERVICE = frozenset({Role.CLINICIAN, Role.SERVICE})
# Each module's patient lives in STATE (served by the local configuration); ELSEWHERE is another state.
STATE, ELSEWHERE = "CO", "NY"

_ADDRESSES = {
    "CO": ({"line1": "1 Main St", "city": "Denver", "state": "CO", "postal_code": "80202"}, "America/Denver"),
    "NY": ({"line1": "2 Broadway", "city": "New York", "state": "NY", "postal_code": "10004"}, "America/New_York"),
}
# Where a service keeps the state of residence it learnt (dosing and safety from PatientRegistered).
_STATE_TABLE = {"intake": "patients", "scheduling": "patients", "billing": "patients", "engagement": "patients"}


class World(Protocol):
    @property
    def stack(self) -> Stack: ...

    @property
    def patient_id(self) -> uuid.UUID:
        """The patient every case is about, resident in STATE."""

    @property
    def other_patient_id(self) -> uuid.UUID:
        """Another patient (whose token must not reach ``patient_id``'s data)."""


# --- Callers: a token and the subject its audit rows are written under.


@dataclass(frozen=True)
class Caller:
    role: Role
    subject: str
    token: str


def fresh_subject(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def patient(patient_id: uuid.UUID) -> Caller:
    subject = fresh_subject("patient")
    return Caller(Role.PATIENT, subject, patient_token(patient_id, subject))


def clinician(*states: str, subject: str | None = None) -> Caller:
    subject = subject or fresh_subject(f"dr-{'-'.join(states).lower() or 'none'}")
    return Caller(Role.CLINICIAN, subject, clinician_token(subject, states))


def operator() -> Caller:
    subject = fresh_subject("operator")
    return Caller(Role.OPERATOR, subject, operator_token(subject))


def service(subject: str | None = None) -> Caller:
    subject = subject or fresh_subject("service")
    return Caller(Role.SERVICE, subject, service_token(subject))


def of_role(role: Role, patient_id: uuid.UUID, clinician_subject: str | None = None) -> Caller:
    """A caller in ``role`` who would pass every check but the role: the patient themself, a licensed clinician."""
    if role is Role.PATIENT:
        return patient(patient_id)
    if role is Role.CLINICIAN:
        return clinician(STATE, subject=clinician_subject)
    return operator() if role is Role.OPERATOR else service()


# --- Requests and the audit log.


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None


async def call(stack: Stack, service_name: str, request: Request, caller: Caller | str | None) -> httpx.Response:
    """``request`` to the service as ``caller`` (or with that raw token; None: without one)."""
    token = caller.token if isinstance(caller, Caller) else caller
    async with httpx.AsyncClient(timeout=10, headers=bearer(token) if token else {}) as http:
        return await http.request(
            request.method, url(stack, service_name, request.path), json=request.body, params=request.params
        )


async def _fetch(stack: Stack, service_name: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(stack.postgres.dsn(service_name, service_name))
    try:
        return await conn.fetch(query, *args)  # type: ignore[no-any-return]
    finally:
        await conn.close()


async def audit_rows(stack: Stack, service_name: str, caller: Caller | str) -> list[dict[str, Any]]:
    """The caller's (or that subject's) audit rows in that service, oldest first."""
    actor = caller.subject if isinstance(caller, Caller) else caller
    rows = await _fetch(stack, service_name, "SELECT * FROM audit_log WHERE actor = $1 ORDER BY id", actor)
    return [dict(r) for r in rows]


async def assert_audited(
    stack: Stack,
    service_name: str,
    caller: Caller,
    action: str,
    resource: str,
    patient_id: uuid.UUID | None,
    outcome: str,
) -> None:
    """The caller's latest audit row is this one."""
    rows = await audit_rows(stack, service_name, caller)
    assert rows, f"no audit row for {caller.subject}"
    last = rows[-1]
    assert (last["action"], last["resource"], last["patient_id"], last["outcome"], last["actor_role"]) == (
        action,
        resource,
        patient_id,
        outcome,
        str(caller.role),
    ), last


async def registered_patient(stack: Stack, state: str, *learnt_by: str) -> uuid.UUID:
    """A patient registered through intake in ``state``, once each service in ``learnt_by`` knows the state."""
    address, time_zone = _ADDRESSES[state]
    body = intake_journeys.registration(address=address, state_of_residence=state, time_zone=time_zone)
    response = await intake_journeys.register(stack, body)
    assert response.status_code == 201, response.text
    patient_id = uuid.UUID(response.json()["patient_id"])
    for name in learnt_by:
        await eventually(
            lambda name=name: _known_state(stack, name, patient_id), what=f"{name} learnt the patient's state"
        )
    return patient_id


async def _known_state(stack: Stack, service_name: str, patient_id: uuid.UUID) -> str | None:
    table = _STATE_TABLE.get(service_name, "patient_jurisdictions")
    rows = await _fetch(
        stack, service_name, f"SELECT state_of_residence FROM {table} WHERE patient_id = $1", patient_id
    )
    return rows[0]["state_of_residence"] if rows else None


def team_member(patient_id: uuid.UUID) -> str:
    """The subject of the patient's prescriber in the authorisation walk (``care_team`` puts them on the team)."""
    return f"dr-team-{patient_id.hex[:12]}"


async def care_team(
    stack: Stack, patient_id: uuid.UUID, state: str, *learnt_by: str, therapist: str | None = None
) -> None:
    """Put ``team_member(patient_id)`` (and ``therapist``, if given: a clinician already in scheduling's directory
    or entered here) on the patient's care team, once scheduling knows the patient, and wait until each service in
    ``learnt_by`` learnt it."""
    await eventually(lambda: _known_state(stack, "scheduling", patient_id), what="scheduling learnt the patient")
    members = {team_member(patient_id): "psychiatric_clinician", **({therapist: "therapist"} if therapist else {})}
    async with httpx.AsyncClient(timeout=10, headers=bearer(service_token("carecoord-test-suite"))) as http:
        for subject, role in members.items():
            directory = url(stack, "scheduling", f"/v1/clinicians/{subject}")
            if (await http.get(directory)).status_code == 200:
                continue
            body = {"role": role, "time_zone": _ADDRESSES[state][1], "licensed_states": [state]}
            response = await http.put(directory, json={**body, "weekly_availability": ALL_WEEK})
            assert response.status_code == 200, response.text
    await join_care_team(stack, patient_id, *learnt_by, prescriber_id=team_member(patient_id), therapist_id=therapist)


# --- The table: one Endpoint per route.

RequestFor = Callable[[Any, Caller], Awaitable[Request]]


def route(method: str, path: str, body: Any = None, params: Any = None) -> RequestFor:
    """A request whose ``path`` is a format string over the world ``w`` (``/v1/plans/{w.plan_id}``); ``body`` and
    ``params`` may be functions of (world, caller), e.g. to name the caller as the deciding clinician."""

    def value(part: Any, world: Any, caller: Caller) -> Any:
        return part(world, caller) if callable(part) else part

    async def request(world: Any, caller: Caller) -> Request:
        return Request(method, path.format(w=world), value(body, world, caller), value(params, world, caller))

    return request


@dataclass(frozen=True)
class Endpoint:
    name: str
    request: RequestFor
    admits: frozenset[Role]
    # Patient-scoped: the (action, resource) of the patient check's audit row. None: about no single patient.
    audited_as: tuple[str, str] | None = None
    # What an admitted caller gets: the status proves the request went past authorisation. None: allowing
    # the call would change what other cases rely on, so the module tests the allowed cases on its own.
    ok: int | None = 200
    # A clinical decision: the clinician_id in the body must be the calling clinician.
    in_own_name: bool = False
    # A clinician gets past the checks only as this subject (the appointment's own clinician, ...).
    clinician_subject: str | None = None

    def __str__(self) -> str:
        return self.name


# Every service's FHIR CapabilityStatement: about no patient, for every role that holds a valid token.
FHIR_METADATA = Endpoint("FHIR capability statement", route("GET", "/fhir/R4/metadata"), ALL_ROLES)


OWN, OTHER, LICENSED, OUTSIDE_TEAM, ELSEWHERE_LICENSED, IMPERSONATING, SERVICE = (
    "the patient themself",
    "another patient",
    "a care-team member licensed in the patient's state",
    "a clinician licensed in the patient's state outside their care team",
    "a clinician licensed elsewhere",
    "a clinician in someone else's name",
    "a service",
)
# What a refused clinician outside the care team is told (carecoord_shared.auth.access).
NOT_RELATED = "the clinician is not on the patient's care team"


def ids(endpoints: list[Endpoint]) -> list[str]:
    return [e.name for e in endpoints]


def credential_cases(endpoints: list[Endpoint]) -> list[tuple[Endpoint, str]]:
    """Every endpoint with each credential that must get 401 (the keys of ``UNAUTHENTICATED``)."""
    return [(e, credential) for e in endpoints for credential in UNAUTHENTICATED]


def role_cases(endpoints: list[Endpoint]) -> list[tuple[Endpoint, Role]]:
    return [(e, r) for e in endpoints for r in sorted(ALL_ROLES - e.admits)]


def scope_cases(endpoints: list[Endpoint]) -> list[tuple[Endpoint, str]]:
    """Every admitted kind of caller about the module's patient (allowed ones only where the endpoint has ``ok``)."""
    cases = []
    for e in (e for e in endpoints if e.audited_as is not None):
        allowed = (
            [OWN] * (Role.PATIENT in e.admits)
            + [LICENSED] * (Role.CLINICIAN in e.admits)
            + [SERVICE] * (Role.SERVICE in e.admits)
        )
        denied = [OTHER] * (Role.PATIENT in e.admits) + [
            ELSEWHERE_LICENSED,
            OUTSIDE_TEAM,
            *[IMPERSONATING] * e.in_own_name,
        ] * (Role.CLINICIAN in e.admits)
        assert denied, f"{e.name} admits neither patients nor clinicians: not patient-scoped"
        cases += [(e, who) for who in (allowed if e.ok else []) + denied]
    return cases


# --- The checks.


async def expect_unauthenticated(world: World, service_name: str, endpoint: Endpoint, credential: str) -> None:
    request = await endpoint.request(world, service())
    response = await call(world.stack, service_name, request, UNAUTHENTICATED[credential])
    assert response.status_code == 401, response.text
    # RFC 6750 §3: the bare challenge when no token came, error="invalid_token" when one was refused.
    challenge = "Bearer" if UNAUTHENTICATED[credential] is None else 'Bearer error="invalid_token"'
    assert response.headers.get("www-authenticate") == challenge


async def expect_role_refused(world: World, service_name: str, endpoint: Endpoint, role: Role) -> None:
    caller = of_role(role, world.patient_id, endpoint.clinician_subject)
    request = await endpoint.request(world, caller)
    before = len(await audit_rows(world.stack, service_name, caller))
    response = await call(world.stack, service_name, request, caller)
    assert response.status_code == 403, response.text
    assert "needs the role" in response.json()["detail"]
    rows = (await audit_rows(world.stack, service_name, caller))[before:]
    assert [(r["action"], r["outcome"], r["actor_role"]) for r in rows] == [
        (f"{request.method} refused", "denied", str(role))
    ], rows


async def expect_scope(world: World, service_name: str, endpoint: Endpoint, who: str) -> httpx.Response:
    """The ``who`` caller is let through or refused, and the patient check left its one audit row saying so."""
    assert endpoint.audited_as is not None
    action, resource = endpoint.audited_as
    member = endpoint.clinician_subject or team_member(world.patient_id)
    caller = {
        OWN: lambda: patient(world.patient_id),
        OTHER: lambda: patient(world.other_patient_id),
        LICENSED: lambda: clinician(STATE, "WA", subject=member),
        OUTSIDE_TEAM: lambda: clinician(STATE, "WA"),
        ELSEWHERE_LICENSED: lambda: clinician(ELSEWHERE, "TX", subject=endpoint.clinician_subject),
        IMPERSONATING: lambda: clinician(STATE, subject=member),
        SERVICE: service,
    }[who]()
    request = await endpoint.request(world, caller)
    if who == IMPERSONATING:
        request = dataclasses.replace(request, body={**request.body, "clinician_id": "dr-somebody-else"})
    before = len(await audit_rows(world.stack, service_name, caller))
    response = await call(world.stack, service_name, request, caller)
    rows = (await audit_rows(world.stack, service_name, caller))[before:]
    if who == IMPERSONATING:
        assert response.status_code == 403 and "own name" in response.json()["detail"], response.text
        assert rows and rows[-1]["outcome"] == "denied", rows
        return response
    refused = who in (OTHER, ELSEWHERE_LICENSED, OUTSIDE_TEAM)
    assert response.status_code == (403 if refused else endpoint.ok), response.text
    if who == OUTSIDE_TEAM:
        assert NOT_RELATED in response.json()["detail"], response.text
    outcome = "denied" if refused else "allowed"
    role = "therapist" if endpoint.clinician_subject else "prescriber"
    basis = None if refused else {OWN: "self", LICENSED: f"care_team:{role}", SERVICE: "service"}[who]
    assert [(r["action"], r["resource"], r["patient_id"], r["outcome"], r["actor_role"], r["basis"]) for r in rows] == [
        (action, resource, world.patient_id, outcome, str(caller.role), basis)
    ], rows
    if not refused:
        answer = response.json() if response.content else None
        items = answer if isinstance(answer, list) else [answer] if isinstance(answer, dict) else []
        shown = {str(item.get("patient_id", world.patient_id)) for item in items if isinstance(item, dict)}
        assert shown <= {str(world.patient_id)}, "an allowed answer shows only the patient asked about"
    return response


async def expect_admitted(world: World, service_name: str, endpoint: Endpoint, *, audited: bool) -> None:
    """A route about no single patient: every admitted role gets through (and, ``audited``, leaves one row naming no patient)."""
    for role in sorted(endpoint.admits):
        caller = of_role(role, world.patient_id, endpoint.clinician_subject)
        before = len(await audit_rows(world.stack, service_name, caller))
        response = await call(world.stack, service_name, await endpoint.request(world, caller), caller)
        assert response.status_code == endpoint.ok, (endpoint.name, role, response.text)
        if audited:
            rows = (await audit_rows(world.stack, service_name, caller))[before:]
            assert [(r["outcome"], r["patient_id"]) for r in rows] == [("allowed", None)], (endpoint.name, role, rows)
