"""Every error answer of every service, one shape: RFC 9457 problem details (``application/problem+json``).

A problem document has the standard members ``type`` (a URI naming the kind of problem, :data:`TYPE_BASE`
plus its ``code``), ``title`` (the same for every problem of a type), ``status`` (the HTTP status, repeated),
``detail`` (what went wrong this time, for a person) and ``instance`` (the request's path, never its query),
and carecoord's extension members: ``code`` (the type's last segment, for a program to switch on),
``errors`` (a 422: each bad field and why, never the submitted value), ``reason`` (a ``limit_exceeded``'s
code) and ``retry_after`` (seconds, beside a 503's Retry-After header).

:data:`DOMAIN_PROBLEMS` maps each domain error of ``carecoord_shared.errors`` to its type: a new error class
is one entry there (a unit test fails for an error class without one). Statuses that the framework answers
itself (an unknown route, a method the route does not take, a body too large) are in :data:`HTTP_PROBLEMS`.
The list a client reads is docs/api-errors.md.
"""

from __future__ import annotations

import http
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..errors import (
    Forbidden,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    IdempotencyOutcomeLost,
    InvalidCursor,
    LimitExceeded,
    NotCurrentVersion,
    NotFound,
    NotReady,
    PreconditionFailed,
    RuleViolation,
    Unauthenticated,
)

log = structlog.get_logger("carecoord.http")

MEDIA_TYPE = "application/problem+json"
# Absolute, not relative: a relative reference resolves against each service's own address, so one kind of
# problem would have five different types. The URI names the type; clients compare it, nothing fetches it.
TYPE_BASE = "https://carecoord.dev/problems/"


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    # Extension members and headers the error carries (a limit's reason, a retry hint); none by default.
    extensions: Callable[[Exception], Mapping[str, Any]] = field(default=lambda _exc: {})
    headers: Callable[[Exception], Mapping[str, str]] = field(default=lambda _exc: {})

    @property
    def type(self) -> str:
        return TYPE_BASE + self.code


RETRY_AFTER_S = 1


def _retry(_exc: Exception) -> Mapping[str, Any]:
    return {"retry_after": RETRY_AFTER_S}


def _retry_header(_exc: Exception) -> Mapping[str, str]:
    return {"Retry-After": str(RETRY_AFTER_S)}


# One entry per error class of carecoord_shared.errors. A subclass needs its own entry only to answer
# differently from its base (LimitExceeded is a RuleViolation, answered 422 rather than 409).
DOMAIN_PROBLEMS: dict[type[Exception], ProblemType] = {
    # RFC 6750 §3: a missing token gets the bare challenge, a refused one says so (no description: the
    # detail member has it, and a header is no place for a sentence).
    Unauthenticated: ProblemType(
        "unauthenticated",
        401,
        "Authentication required",
        headers=lambda exc: {
            "WWW-Authenticate": 'Bearer error="invalid_token"'
            if isinstance(exc, Unauthenticated) and exc.presented
            else "Bearer"
        },
    ),
    Forbidden: ProblemType("forbidden", 403, "Not allowed"),
    NotFound: ProblemType("not_found", 404, "Not found"),
    RuleViolation: ProblemType("rule_violation", 409, "Refused by a rule"),
    LimitExceeded: ProblemType(
        "limit_exceeded",
        422,
        "A limit is exceeded",
        extensions=lambda exc: {"reason": exc.reason} if isinstance(exc, LimitExceeded) else {},
    ),
    NotCurrentVersion: ProblemType(
        "version_not_current",
        409,
        "Not the version in force",
        extensions=lambda exc: {"current_version": exc.current_version} if isinstance(exc, NotCurrentVersion) else {},
    ),
    NotReady: ProblemType("not_ready", 503, "Not ready yet", extensions=_retry, headers=_retry_header),
    IdempotencyKeyReused: ProblemType("idempotency_key_reused", 422, "The Idempotency-Key names another request"),
    IdempotencyInFlight: ProblemType(
        "idempotency_in_flight", 409, "A request with this key is in flight", extensions=_retry, headers=_retry_header
    ),
    # Applied, its answer not kept: no Retry-After, since a retry gets the same.
    IdempotencyOutcomeLost: ProblemType("idempotency_outcome_lost", 409, "The request's outcome was not kept"),
    # Read again, decide again: the current ETag saves the read only if the caller already knows what changed.
    PreconditionFailed: ProblemType(
        "precondition_failed",
        412,
        "Changed since it was read",
        extensions=lambda exc: {"current_etag": exc.current} if isinstance(exc, PreconditionFailed) else {},
        headers=lambda exc: {"ETag": exc.current} if isinstance(exc, PreconditionFailed) else {},
    ),
    # A list's cursor it did not issue: a bad query parameter, so the same shape as any invalid request.
    InvalidCursor: ProblemType(
        "invalid_cursor",
        422,
        "The cursor is not valid",
        extensions=lambda exc: {"errors": [{"field": "cursor", "problem": str(exc), "type": "invalid_cursor"}]},
    ),
}

INVALID_REQUEST = ProblemType("invalid_request", 422, "The request is not valid")
UNAVAILABLE = ProblemType("unavailable", 503, "Temporarily unavailable")
INTERNAL_ERROR = ProblemType("internal_error", 500, "Internal error")
TOO_LARGE = ProblemType("too_large", 413, "The request body is too large")

# What the framework answers itself (Starlette's HTTPException), by status, with the detail it says.
HTTP_PROBLEMS: dict[int, tuple[ProblemType, str]] = {
    400: (ProblemType("bad_request", 400, "Bad request"), "The request could not be read."),
    404: (ProblemType("route_not_found", 404, "No such route"), "No route of this service has this path."),
    405: (
        ProblemType("method_not_allowed", 405, "Method not allowed"),
        "This route does not take this method (the Allow header lists those it takes).",
    ),
    413: (TOO_LARGE, "The request body is too large."),
    415: (
        ProblemType("unsupported_media_type", 415, "Unsupported media type"),
        "The body's media type is not accepted.",
    ),
}


def domain_problem(exc: Exception) -> ProblemType | None:
    """The type of a domain error: its own class's entry, else its nearest base class's."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_PROBLEMS:
            return DOMAIN_PROBLEMS[cls]
    return None


def http_problem(status: int) -> ProblemType:
    """The type of a status the framework answers; one not listed is RFC 9457's ``about:blank``."""
    if status in HTTP_PROBLEMS:
        return HTTP_PROBLEMS[status][0]
    phrase = http.HTTPStatus(status).phrase
    return ProblemType(phrase.lower().replace(" ", "_").replace("-", "_"), status, phrase)


def problem_document(kind: ProblemType, detail: str, instance: str, **extensions: Any) -> dict[str, Any]:
    return {
        # RFC 9457: about:blank when the status says it all (a status we give no type of our own).
        "type": kind.type if kind.code in _TYPED else "about:blank",
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
        "instance": instance,
        "code": kind.code,
        **extensions,
    }


def problem_response(
    kind: ProblemType,
    detail: str,
    instance: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    return JSONResponse(
        problem_document(kind, detail, instance, **extensions),
        status_code=kind.status,
        headers=dict(headers or {}),
        media_type=MEDIA_TYPE,
    )


def instance_of(request: Request) -> str:
    """The request's path as it was sent (percent-encoded: a URI reference, with no control character a
    decoded path may hold), without the query string (which may carry what a caller searched for)."""
    return path_of(request.scope)


def path_of(scope: Mapping[str, Any]) -> str:
    raw = scope.get("raw_path")
    if not raw:
        return str(scope.get("root_path", "")) + str(scope["path"])
    # Some servers keep the query in raw_path.
    return bytes(raw).split(b"?", 1)[0].decode("ascii", errors="replace")


def domain_response(request: Request, exc: Exception) -> JSONResponse:
    kind = domain_problem(exc)
    if kind is None:
        raise TypeError(f"{type(exc).__name__} has no entry in DOMAIN_PROBLEMS")
    return problem_response(kind, str(exc), instance_of(request), headers=kind.headers(exc), **kind.extensions(exc))


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the field (empty for the whole body)")
    problem: str = Field(description="Why it was refused; never the submitted value")
    type: str = Field(description="pydantic's error type, e.g. missing, uuid_parsing")


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error answer is (media type application/problem+json)."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="URI naming the kind of problem: https://carecoord.dev/problems/<code>")
    title: str = Field(description="Short summary of the type; the same for every problem of the type")
    status: int = Field(description="The HTTP status of the answer")
    detail: str = Field(description="What went wrong this time, for a person")
    instance: str = Field(description="The request's path (never its query)")
    code: str = Field(description="Machine-readable kind of problem (the type URI's last segment)")
    errors: list[FieldError] | None = Field(None, description="invalid_request: each bad field and why")
    reason: str | None = Field(None, description="limit_exceeded: which limit")
    retry_after: int | None = Field(None, description="Seconds to wait before trying again (as Retry-After)")


def all_types() -> list[ProblemType]:
    return [
        *DOMAIN_PROBLEMS.values(),
        INVALID_REQUEST,
        UNAVAILABLE,
        INTERNAL_ERROR,
        *(t for t, _ in HTTP_PROBLEMS.values()),
    ]


_TYPED = frozenset(t.code for t in all_types())


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    return domain_response(request, exc)


# pydantic quotes what it found in backticks ("... found `J` at 0"): that part is the caller's input.
_FOUND = re.compile(r"[,:]?\s*found `.*$", re.DOTALL)


def _without_input(message: str) -> str:
    return _FOUND.sub("", message)


def _field(err: Mapping[str, Any]) -> str:
    # An unknown key is named (a client needs to know which), as a schema's field names are: a key is
    # not a submitted value.
    return ".".join(str(p) for p in err["loc"] if p != "body")


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Name every bad field and why, without echoing the submitted values.
    errors = [
        {"field": _field(err), "problem": _without_input(err["msg"]), "type": err["type"]} for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field'] or 'body'}: {e['problem']}" for e in errors)
    return problem_response(
        INVALID_REQUEST, f"The request was not accepted: {summary}", instance_of(request), errors=errors
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    kind = http_problem(exc.status_code)
    said = HTTP_PROBLEMS.get(exc.status_code, (kind, kind.title))[1]
    # Starlette's own detail is the status phrase; one a raiser wrote is kept.
    detail = exc.detail if exc.detail and exc.detail != http.HTTPStatus(exc.status_code).phrase else said
    return problem_response(kind, str(detail), instance_of(request), headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # Nothing of the exception reaches the caller (its message may quote data); its class is logged.
    route = getattr(request.scope.get("route"), "path", "unknown")
    log.error("http.unhandled", error=type(exc).__name__, method=request.method, route=route)
    return problem_response(
        INTERNAL_ERROR, "The service failed to answer this request; it is logged.", instance_of(request)
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Every error answer of ``app`` a problem document: domain errors, invalid requests, the framework's
    own (unknown route, wrong method, ...) and any other exception (a 500 that says nothing of it)."""
    for error in DOMAIN_PROBLEMS:
        app.add_exception_handler(error, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_WRITES = {"post", "put", "patch", "delete"}


def documented_statuses(method: str, operation: Mapping[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it takes: a token (401, 403, and the database
    behind it, 503), path parameters (404), any parameter or body (422), a body (413), a change (409)."""
    statuses = {500}
    if operation.get("security"):
        statuses |= {401, 403, 503}
        if method in _WRITES:
            statuses.add(409)
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(413)
    return statuses


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """``openapi`` with every operation's error responses as problem documents (the Problem schema), the
    route's own descriptions kept; FastAPI's default 422 schema, which no answer has, is dropped."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for item in openapi.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            errors = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
            for status in errors | documented_statuses(method, operation):
                answer = responses.setdefault(str(status), {})
                if status == 422 and answer.get("description") == "Validation Error":
                    answer["description"] = INVALID_REQUEST.title
                answer.setdefault("description", http.HTTPStatus(status).phrase)
                answer["content"] = {MEDIA_TYPE: {"schema": dict(_PROBLEM_REF)}}
    if "HTTPValidationError" not in str(openapi.get("paths")):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return openapi
