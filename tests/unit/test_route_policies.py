"""Every HTTP route of every service declares who may call it; only health, metrics and docs are open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute

from carecoord_contracts.topics import SERVICES
from carecoord_shared.auth import Role
from carecoord_shared.http import admitted_roles
from carecoord_shared.service import create_app
from tests.services import built, settings_for

OPEN = {"/health/live", "/health/ready", "/metrics", "/docs/asyncapi"}
# Writes an operator may make: running the system, never clinical or billing data.
OPERATOR_WRITES = {
    ("billing", "/v1/clearinghouse/exchange"),  # send claims / fetch answers now, instead of at the next poll
    # Who is on a patient's care team is operational: operators assign teams (ADR 0015); no PHI changes.
    ("scheduling", "/v1/patients/{patient_id}/care-team"),
    # Operators work the operators' queue of tasks (reviews nobody could book, pages nobody took) and route
    # tasks to people: what was done about the system, not a clinical decision (engagement's routes.py).
    ("engagement", "/v1/tasks/{task_id}/close"),
    ("engagement", "/v1/tasks/{task_id}/owner"),
    # The staff directory: where staff are paged (staff routing, no patient data; notify/staff_routes.py).
    ("engagement", "/v1/staff/{staff_id}/contact"),
    # Apply a patient's parked events after a fix: the service's own handlers do the writing.
    *((service, "/v1/ops/parked/{patient_id}/release") for service in SERVICES),
    # Who works what: the on-call rota, clinicians' absences and a review's assignee say who is to act,
    # never what is clinically true (ADR 0015); the rota is kept by operations.
    ("safety", "/v1/rota/shifts"),
    ("safety", "/v1/rota/shifts/{shift_id}"),
    ("safety", "/v1/clinicians/{clinician_id}/absences"),
    ("safety", "/v1/clinicians/{clinician_id}/absences/{absence_id}"),
    ("safety", "/v1/reviews/{review_id}/assignee"),
}


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI keeps those as one entry until first use)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_admits_named_roles_only(service: str) -> None:
    app = create_app(built(service), settings_for(service))
    routes = list(api_routes(app.routes))
    unguarded = [f"{sorted(r.methods)} {r.path}" for r in routes if r.path not in OPEN and admitted_roles(r) is None]
    assert unguarded == [], f"{service}: routes without allow(...)"
    guarded = [r for r in routes if r.path not in OPEN]
    assert guarded, f"{service} has no API routes?"
    # Operators run the system: no route that writes clinical data admits them.
    for route in guarded:
        if route.methods & {"POST", "PUT", "DELETE", "PATCH"} and (service, route.path) not in OPERATOR_WRITES:
            assert Role.OPERATOR not in admitted_roles(route), (
                f"{service}: operators may {sorted(route.methods)} {route.path}"
            )
