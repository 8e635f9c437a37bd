"""The FHIR R4 read API every service serves under ``/fhir/R4/``: the pieces that are the same everywhere.

A service describes each resource type it serves as a :class:`FhirResource` (whose patient a
resource id names, how to read one, how to search a patient's; the mapping to FHIR is the
service's own, pure, in its ``fhir.py``) and mounts :func:`fhir_router`, which gives it

    GET /fhir/R4/metadata              the CapabilityStatement: the types and search parameters served here
    GET /fhir/R4/<Type>?patient=<id>   a searchset Bundle of the patient's resources (``_id``, ``_count``, ``_offset``)
    GET /fhir/R4/<Type>/<id>           one resource (404 when absent)

with the same authorisation and audit as the service's other reads: ``allow(...)`` for the roles,
``access.patient(...)`` (one audit row, allowed or denied) before anything about the patient is read.
Errors are the project's domain errors (NotFound, Forbidden, RequestValidationError), answered
like every other route's; a FHIR client conventionally expects an OperationOutcome (docs/fhir.md).
The answers are plain dicts with the ``application/fhir+json`` media type: the models that check
them against the specification (fhir.resources) are a test dependency only.
"""

# No `from __future__ import annotations`: the routes are closures whose parameter types FastAPI reads.

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..auth.access import Access
from ..auth.tokens import Principal, Role
from ..errors import NotFound
from ..messaging.unit_of_work import UnitOfWork
from .auth import allow
from .dependencies import UowDep

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
PREFIX = "/fhir/R4"
DEFAULT_COUNT, MAX_COUNT = 50, 100
# A search reads at most this many of one patient's resources; the Bundle pages through them.
MAX_OFFSET = 1000
MAX_FILTER_VALUE = 200
# A FHIR id: [A-Za-z0-9\-\.]{1,64} (R4 id datatype).
ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"
_REFERENCE = re.compile(r"^(?:Patient/)?([0-9a-fA-F-]{36})$")
# Local code systems: our own codes, published under one base (docs/fhir.md).
CODE_SYSTEM_BASE = "https://carecoord.example/fhir/CodeSystem"

Owner = Callable[[UnitOfWork, str], Awaitable[uuid.UUID]]
Read = Callable[[UnitOfWork, str, Principal], Awaitable[dict[str, Any]]]
Search = Callable[[UnitOfWork, uuid.UUID, Principal], Awaitable[list[dict[str, Any]]]]


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def invalid(parameter: str, message: str) -> RequestValidationError:
    """A bad search parameter, answered as every other invalid request is (422, the field and why; no value echoed)."""
    return RequestValidationError([{"loc": ("query", parameter), "msg": message, "type": "value_error"}])


def patient_reference(value: str, parameter: str = "patient") -> uuid.UUID:
    """The patient a ``patient=`` search names: ``<id>`` or ``Patient/<id>``, the id our pseudonymous UUID."""
    match = _REFERENCE.match(value.strip())
    if match is None:
        raise invalid(parameter, "must be a patient id or Patient/<id> (a UUID)")
    try:
        return uuid.UUID(match.group(1))
    except ValueError:
        raise invalid(parameter, "must be a patient id or Patient/<id> (a UUID)") from None


def reference(resource_type: str, resource_id: object, display: str | None = None) -> dict[str, str]:
    out = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        out["display"] = display
    return out


def instant(value: datetime) -> str:
    """A FHIR dateTime/instant: ISO 8601 with its offset (a naive value is taken as UTC)."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


@dataclass(frozen=True)
class SearchFilter:
    """A search parameter besides the common ones, applied to the patient's mapped resources: (resource, value) -> match."""

    name: str
    type: str
    documentation: str
    matches: Callable[[dict[str, Any], str], bool]


@dataclass(frozen=True)
class FhirResource:
    """One resource type a service serves: which patient an id names, read one, search one patient's."""

    type: str
    # The audit row of a read and of a search (the service's existing reads of the same data).
    audit_resource: str
    owner: Owner
    read: Read
    search: Search
    search_action: str = "read"
    roles: frozenset[Role] = frozenset({Role.PATIENT, Role.CLINICIAN, Role.SERVICE})
    # Search parameters besides the common ones; the CapabilityStatement lists them.
    search_params: tuple[tuple[str, str, str], ...] = (
        ("patient", "reference", "The patient (id or Patient/<id>); required"),
    )
    filters: tuple[SearchFilter, ...] = ()


@dataclass(frozen=True)
class SearchPage:
    ids: frozenset[str] | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def searchset(base: str, resource_type: str, resources: list[dict[str, Any]], page: SearchPage) -> dict[str, Any]:
    """A searchset Bundle of one page of ``resources`` (each with its id), with self and next links.

    ``total`` is the number of matches; ``_offset`` pages (bounded by MAX_OFFSET, as the reads are)."""
    matches = [r for r in resources if page.ids is None or r["id"] in page.ids]
    shown = matches[page.offset : page.offset + page.count]

    def link(offset: int) -> str:
        params = {**page.extra, "_count": str(page.count)}
        if page.ids is not None:
            params["_id"] = ",".join(sorted(page.ids))
        if offset:
            params["_offset"] = str(offset)
        return f"{base}{PREFIX}/{resource_type}?{urlencode(params)}"

    links = [{"relation": "self", "url": link(page.offset)}]
    if page.offset + page.count < len(matches) and page.offset + page.count <= MAX_OFFSET:
        links.append({"relation": "next", "url": link(page.offset + page.count)})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}{PREFIX}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in shown
        ],
    }


def capability_statement(service: str, resources: Sequence[FhirResource]) -> dict[str, Any]:
    """What this service serves: each type with read and search-type, and its search parameters."""
    common = [
        ("_id", "token", "Logical ids, comma-separated"),
        ("_count", "number", f"Page size, 1-{MAX_COUNT} (default {DEFAULT_COUNT})"),
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "kind": "instance",
        "software": {"name": f"carecoord {service}"},
        "implementation": {"description": f"carecoord {service}: FHIR R4 read API"},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Bearer JWT (docs/security.md): own patient or licensed state"},
                "resource": [
                    {
                        "type": r.type,
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": n, "type": t, "documentation": d}
                            for n, t, d in (
                                *r.search_params,
                                *((f.name, f.type, f.documentation) for f in r.filters),
                                *common,
                            )
                        ],
                    }
                    for r in resources
                ],
            }
        ],
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def fhir_router(service: str, resources: Sequence[FhirResource]) -> APIRouter:
    """The metadata route and, for each resource type, its search and read routes."""
    router = APIRouter(prefix=PREFIX, tags=["FHIR R4"])
    statement = capability_statement(service, resources)
    anyone = allow(*Role)

    # No patient data: every role may ask what is served.
    @router.get("/metadata", response_class=FhirResponse, summary="CapabilityStatement: what this service serves")
    async def metadata(_access: Access = anyone) -> FhirResponse:
        return FhirResponse(statement)

    for resource in resources:
        _add_routes(router, resource)
    return router


def _add_routes(router: APIRouter, resource: FhirResource) -> None:
    admitted = allow(*resource.roles)
    patient_param = "_id" if resource.type == "Patient" else "patient"

    async def search(
        request: Request,
        uow: UowDep,
        access: Access = admitted,
        patient: str | None = Query(None, max_length=80, description="The patient: <id> or Patient/<id>"),
        ids: str | None = Query(None, alias="_id", max_length=1000, description="Logical ids, comma-separated"),
        count: int = Query(DEFAULT_COUNT, alias="_count", ge=1, le=MAX_COUNT),
        offset: int = Query(0, alias="_offset", ge=0, le=MAX_OFFSET),
    ) -> FhirResponse:
        wanted = frozenset(i.strip() for i in ids.split(",") if i.strip()) if ids else None
        if wanted is not None and (len(wanted) > MAX_COUNT or not all(re.match(ID_PATTERN, i) for i in wanted)):
            raise invalid("_id", f"must be up to {MAX_COUNT} comma-separated FHIR ids")
        named = patient if resource.type != "Patient" else patient or (ids if wanted and len(wanted) == 1 else None)
        if named is None:
            raise invalid(patient_param, f"a {resource.type} search names one patient ({patient_param}=<id>)")
        patient_id = patient_reference(named, patient_param)
        filters = {
            f.name: (f, request.query_params[f.name]) for f in resource.filters if f.name in request.query_params
        }
        for name, (_, value) in filters.items():
            if not 0 < len(value) <= MAX_FILTER_VALUE:
                raise invalid(name, f"must be 1-{MAX_FILTER_VALUE} characters")
        await access.patient(patient_id, resource.search_action, resource.audit_resource)
        found = await resource.search(uow, patient_id, access.principal)
        for f, value in filters.values():
            found = [r for r in found if f.matches(r, value)]
        extra = {"patient": f"Patient/{patient_id}"} if patient else {}
        extra.update((name, value) for name, (_, value) in filters.items())
        return FhirResponse(searchset(_base(request), resource.type, found, SearchPage(wanted, count, offset, extra)))

    async def read(
        uow: UowDep,
        access: Access = admitted,
        resource_id: str = Path(alias="id", max_length=64, pattern=ID_PATTERN),
    ) -> FhirResponse:
        patient_id = await resource.owner(uow, resource_id)
        await access.patient(patient_id, "read", resource.audit_resource, resource_id)
        return FhirResponse(await resource.read(uow, resource_id, access.principal))

    router.add_api_route(
        f"/{resource.type}",
        search,
        methods=["GET"],
        response_class=FhirResponse,
        summary=f"Search {resource.type} by patient: a searchset Bundle",
    )
    router.add_api_route(
        f"/{resource.type}/{{id}}",
        read,
        methods=["GET"],
        response_class=FhirResponse,
        summary=f"Read one {resource.type}",
    )


def uuid_id(resource_id: str, what: str) -> uuid.UUID:
    """A resource id that is one of our UUIDs, or NotFound (an id that cannot be ours names nothing here)."""
    try:
        return uuid.UUID(resource_id)
    except ValueError:
        raise NotFound(f"no {what} {resource_id[:64]}") from None
