"""The route walk of the problem-details tests: every route of a service, found in its app (so a route added
tomorrow is walked too), and the failing requests that are cheap to make for any route, each with the status it
must get; ``assert_problem`` checks that an answer is an RFC 9457 problem document.

The unit test sends them in-process (no database: what fails before a route touches one), the e2e test to the
running services, adding what needs the database (a refused role's audit row, an unknown id).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from carecoord_shared.auth import Role, mint_token
from carecoord_shared.http import admitted_roles
from carecoord_shared.service import MAX_REQUEST_BYTES
from tests.unit.test_route_policies import OPEN, api_routes

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://carecoord.dev/problems/"
FORGED = mint_token(Role.SERVICE, "problem-walk", secret="a-secret-no-carecoord-service-trusts-at-all")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def token(role: Role) -> str:
    """A valid token of ``role`` (the route's checks past the role are not this walk's business)."""
    if role is Role.PATIENT:
        return mint_token(role, "problem-walk-patient", patient_id=uuid.uuid4())
    if role is Role.CLINICIAN:
        return mint_token(role, "problem-walk-clinician", licensed_states=["CO"])
    return mint_token(role, f"problem-walk-{role}")


def guarded_routes(app: FastAPI) -> list[APIRoute]:
    return [r for r in api_routes(app.routes) if r.path not in OPEN]


def _path(route: APIRoute, malformed: bool = False) -> str:
    """The route's path with a fresh value for each parameter (``malformed``: a UUID or int one not of its type)."""
    values = {}
    for param in route.dependant.path_params:
        kind = param.field_info.annotation
        # The placeholder is the parameter's alias where it has one (FHIR's {id}).
        name = param.alias or param.name
        if kind is uuid.UUID:
            values[name] = "not-an-id" if malformed else str(uuid.uuid4())
        elif kind is int:
            values[name] = "not-a-number" if malformed else "1"
        else:
            values[name] = "problem-walk"
    return route.path.format(**values)


def _typed_path_params(route: APIRoute) -> bool:
    return any(p.field_info.annotation in (uuid.UUID, int) for p in route.dependant.path_params)


def _unserved_method(app: FastAPI, path: str) -> str | None:
    served: set[str] = set()
    for route in api_routes(app.routes):
        if route.path_regex.match(path):
            served |= route.methods
    return next((m for m in METHODS if m not in served), None)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    token: str | None = None
    json: Any = None
    content: bytes | None = None
    chunked: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    headers = {**case.headers, **({"Authorization": f"Bearer {case.token}"} if case.token else {})}
    if case.chunked and case.content is not None:
        headers["Content-Type"] = "application/json"
        return await client.request(case.method, case.path, content=_chunks(case.content), headers=headers)
    if case.content is not None:
        headers["Content-Type"] = "application/json"
        return await client.request(case.method, case.path, content=case.content, headers=headers)
    return await client.request(case.method, case.path, json=case.json, headers=headers)


def cases(app: FastAPI) -> Iterator[Case]:
    """What fails before a route touches its database: 401, 404 (no route), 405, 413 and 422, for every route."""
    # The instance is the path as sent: no query, still percent-encoded.
    yield Case("unknown route", "GET", "/v1/no-such-route-anywhere?name=Jane+Roe", 404)
    yield Case("unknown route, encoded", "GET", "/v1/no%20such%0D%0Aroute", 404)
    too_big = b"x" * (MAX_REQUEST_BYTES + 1)
    for route in guarded_routes(app):
        admitted = admitted_roles(route)
        assert admitted, route.path
        method = sorted(route.methods)[0]
        path = _path(route)
        name = f"{method} {route.path}"
        allowed = token(sorted(admitted)[0])
        yield Case(f"{name}: no token", method, path, 401)
        yield Case(f"{name}: forged token", method, path, 401, token=FORGED)
        if _typed_path_params(route):
            yield Case(f"{name}: malformed path parameter", method, _path(route, malformed=True), 422, token=allowed)
        if route.body_field is not None:
            yield Case(f"{name}: body not an object", method, path, 422, token=allowed, json="not an object")
            yield Case(f"{name}: malformed JSON", method, path, 422, token=allowed, content=b"{not json")
            yield Case(
                f"{name}: streamed body too large", method, path, 413, token=allowed, content=too_big, chunked=True
            )
        yield Case(f"{name}: body too large", method, path, 413, token=allowed, content=too_big)
        if (other := _unserved_method(app, path)) is not None:
            yield Case(f"{name}: method {other}", other, path, 405, token=allowed)


def role_cases(app: FastAPI) -> Iterator[Case]:
    """Each route with a valid token of each role it does not admit: 403 (the refusal is audited: a database)."""
    for route in guarded_routes(app):
        method = sorted(route.methods)[0]
        for role in sorted(set(Role) - (admitted_roles(route) or set())):
            yield Case(f"{method} {route.path}: as {role}", method, _path(route), 403, token=token(role))


def unknown_id_cases(app: FastAPI) -> Iterator[Case]:
    """Each read with an id in its path, for ids nobody has: whatever it answers, an error is a problem."""
    for route in guarded_routes(app):
        if "GET" in route.methods and _typed_path_params(route):
            role = (
                Role.SERVICE
                if Role.SERVICE in (admitted_roles(route) or set())
                else sorted(admitted_roles(route) or ())[0]
            )
            yield Case(f"GET {route.path}: unknown id", "GET", _path(route), 0, token=token(role))


def assert_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem document (of ``status``), with carecoord's members, and returns it."""
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text[:300]}"
    if status is not None:
        assert response.status_code == status, where
    assert response.status_code >= 400, where
    assert response.headers.get("content-type", "").split(";")[0] == PROBLEM_MEDIA_TYPE, where
    body = response.json()
    assert isinstance(body, dict), where
    for member in ("type", "title", "detail", "instance", "code"):
        assert isinstance(body.get(member), str) and body[member], (member, where)
    assert isinstance(body.get("status"), int) and body["status"] == response.status_code, where
    assert re.fullmatch(r"[a-z][a-z_]*", body["code"]), where
    assert body["type"] in (TYPE_BASE + body["code"], "about:blank"), where
    sent_path = response.request.url.raw_path.split(b"?", 1)[0].decode("ascii")
    assert body["instance"] == sent_path, ("instance is the path as sent, without the query", where)
    assert not {"error", "message"} & body.keys(), ("no members of the old error shape", where)
    if response.status_code == 401:
        sent = "authorization" in response.request.headers
        assert response.headers.get("www-authenticate") == ('Bearer error="invalid_token"' if sent else "Bearer"), where
    if response.status_code == 405:
        assert response.headers.get("allow"), where
    if body["code"] == "invalid_request":
        assert isinstance(body.get("errors"), list) and body["errors"], where
        for error in body["errors"]:
            assert {k: type(v) for k, v in error.items()} == {"field": str, "problem": str, "type": str}, where
    if body["code"] == "limit_exceeded":
        assert isinstance(body.get("reason"), str), where
    if "retry_after" in body:
        assert response.headers.get("retry-after") == str(body["retry_after"]), where
    return body


def problem_issue(response: httpx.Response) -> str | None:
    """What makes ``response`` no valid problem document, or None (for a check that collects, not stops)."""
    try:
        assert_problem(response)
    except AssertionError as exc:
        return str(exc)[:300]
    return None


def assert_documents_problems(openapi: dict[str, Any]) -> None:
    """Every operation of ``openapi`` documents its error answers, each a Problem in application/problem+json."""
    schemas = openapi["components"]["schemas"]
    problem = schemas["Problem"]
    assert {"type", "title", "status", "detail", "instance", "code"} <= set(problem["required"]), problem
    assert "HTTPValidationError" not in schemas, "FastAPI's validation error is no answer of ours"
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {s: r for s, r in responses.items() if s.isdigit() and int(s) >= 400}
            expected = {"500"}
            if operation.get("security"):
                expected |= {"401", "403", "503"}
            if operation.get("parameters") or "requestBody" in operation:
                expected.add("422")
            if "requestBody" in operation:
                expected.add("413")
            assert expected <= errors.keys(), (method, path, sorted(errors))
            for status, answer in errors.items():
                assert answer["content"] == {
                    PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, status, answer)
