"""Every POST that creates or decides something honours Idempotency-Key (a retried request gets its first
outcome, not a 409): a walk over every service's routes, found in its app, so a new POST is covered too."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from carecoord_contracts.topics import SERVICES
from carecoord_shared.http import is_idempotent
from carecoord_shared.service import create_app
from tests.services import built, settings_for

# POSTs that neither create nor decide: what a retry of them does is already the first outcome.
NOT_CHANGES = {
    "/v1/rules/shadow",  # safety: a replay that acts on nothing (a read with a body)
    "/v1/clearinghouse/exchange",  # billing: one exchange pass over the drop folders; a retry is another pass
    "/v1/ops/parked/{patient_id}/release",  # every service: releasing parked events, itself idempotent per event
}


@pytest.mark.parametrize("service", SERVICES)
def test_every_creating_or_deciding_post_honours_the_idempotency_key(service: str) -> None:
    app = create_app(built(service), settings_for(service))
    posts = [r for r in app.routes if isinstance(r, APIRoute) and "POST" in r.methods]
    assert posts, "the walk found the service's POST routes"
    missing = sorted(r.path for r in posts if r.path not in NOT_CHANGES and not is_idempotent(r))
    assert missing == [], f"{service}: add dependencies=[IDEMPOTENT] (carecoord_shared.http) to these POSTs"
    documented = app.openapi()["paths"]
    for route in posts:
        if is_idempotent(route):
            parameters = documented[route.path]["post"].get("parameters", [])
            assert any(p["name"] == "idempotency-key" or p["name"] == "Idempotency-Key" for p in parameters), route.path
