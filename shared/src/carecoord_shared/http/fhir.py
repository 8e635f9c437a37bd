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
from starlette.datastructures import QueryParams

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
# A FHIR id: [A-Za-z0-9\-\.]{1,64} (R4 id datatype).
ID_PATTERN = r"^[A-Za-z0-9\-\.]{1,64}$"
_REFERENCE = re.compile(r"^(?:Patient/)?([0-9a-fA-F-]{36})$")
# Local code systems: our own codes, published under one base (docs/fhir.md).
CODE_SYSTEM_BASE = "https://carecoord.example/fhir/CodeSystem"
LOINC = "http://loinc.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
# The screening instruments' total scores, as intake (baselines) and safety (check-ins) both serve them.
# PHQ-9 total 44261-6 (https://loinc.org/44261-6/), GAD-7 total 70274-6 (https://loinc.org/70274-6/).
# PCL-5's summed score, 0-80, 101698-9 (its panel is 101697-1): from a LOINC mirror,
# https://www.healthassure.in/codes/loinc-101698-9-ptsd-pcl-5-score-pcl-5, not loinc.org itself (docs/fhir.md).
SCREENING_TOTALS: dict[str, tuple[str, str, str]] = {
    "phq9": (LOINC, "44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": (LOINC, "70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    "pcl5": (LOINC, "101698-9", "PTSD PCL-5 score [PCL-5]"),
}
MAX_TOKEN_VALUE = 200

Owner = Callable[[UnitOfWork, str], Awaitable[uuid.UUID]]
Read = Callable[[UnitOfWork, str, Principal], Awaitable[dict[str, Any]]]
Search = Callable[[UnitOfWork, uuid.UUID, Principal], Awaitable[list[dict[str, Any]]]]
# A resource's own search parameters (besides patient and the common ones), read from the query string
# before the patient check: which of the patient's mapped resources match, and the parameters as the
# Bundle's links repeat them; a bad value raises ``invalid(...)`` (422).
Narrow = Callable[[QueryParams], tuple[Callable[[dict[str, Any]], bool], list[tuple[str, str]]]]


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


def code_matches(resource: dict[str, Any], value: str) -> bool:
    """A FHIR token search on ``code``: any of the comma-separated ``[system|]code`` matches one of its codings.

    ``code`` alone matches in any system; ``|code`` only a coding without one (FHIR token search)."""
    codings = resource["code"]["coding"]
    for token in value.split(","):
        system, bar, code = token.strip().rpartition("|")
        if any(c["code"] == code and (not bar or c.get("system", "") == system) for c in codings):
            return True
    return False


CODE_PARAM = ("code", "token", "The code (e.g. LOINC): http://loinc.org|<code> or <code>, comma-separated")


def by_code(params: QueryParams) -> tuple[Callable[[dict[str, Any]], bool], list[tuple[str, str]]]:
    """The ``code=`` search of Observations (a :data:`Narrow`); each repeated ``code`` must match (FHIR: AND)."""
    values = params.getlist("code")
    for value in values:
        if not 0 < len(value) <= MAX_TOKEN_VALUE:
            raise invalid("code", f"must be 1-{MAX_TOKEN_VALUE} characters")
    return (lambda r: all(code_matches(r, v) for v in values)), [("code", v) for v in values]


def patient_ref(patient_id: object) -> dict[str, str]:
    return reference("Patient", patient_id)


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
    narrow: Narrow | None = None
    # The search's audit row when the service's existing list read audits another resource name than its
    # one-item read (scheduling: "appointments" vs "appointment"); None: audit_resource.
    search_audit_resource: str | None = None


@dataclass(frozen=True)
class SearchPage:
    ids: frozenset[str] | None = None
    count: int = DEFAULT_COUNT
    offset: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    # A resource's own search parameters (a name may repeat: date=ge...&date=le...).
    narrowed: tuple[tuple[str, str], ...] = ()


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
        return f"{base}{PREFIX}/{resource_type}?{urlencode([*page.narrowed, *params.items()])}"

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
                            {"name": n, "type": t, "documentation": d} for n, t, d in (*r.search_params, *common)
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
        keep, narrowed = resource.narrow(request.query_params) if resource.narrow else (None, [])
        audited_as = resource.search_audit_resource or resource.audit_resource
        await access.patient(patient_id, resource.search_action, audited_as)
        found = await resource.search(uow, patient_id, access.principal)
        if keep is not None:
            found = [r for r in found if keep(r)]
        extra = {"patient": f"Patient/{patient_id}"} if patient else {}
        page = SearchPage(wanted, count, offset, extra, tuple(narrowed))
        return FhirResponse(searchset(_base(request), resource.type, found, page))

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
