"""`carecoord parked` against the running services: the list every service answers, and a release
that only an operator may ask for (the parking itself: tests/integration/test_parking.py)."""

from __future__ import annotations

import json
import uuid

import pytest

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.e2e import journeys
from tests.e2e.cli_io import carecoord, environment

pytestmark = pytest.mark.e2e


async def test_every_service_lists_its_parked_patients_and_an_operator_may_release_one(services: Stack) -> None:
    env = environment(services)
    listed = await carecoord(env, "parked", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []
    assert "No parked patients." in (await carecoord(env, "parked", "list")).stdout

    patient = str(uuid.uuid4())
    released = await carecoord(env, "parked", "release", "safety", patient, "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout) == {
        "service": "safety",
        "patient_id": patient,
        "released": 0,
        "done": True,
        "error": None,
    }
    for service in SERVICES:
        async with api_client() as http:  # the suite's service account: may look, may not release
            assert (await http.get(journeys.url(services, service, "/v1/ops/parked"))).status_code == 200
            refused = await http.post(journeys.url(services, service, f"/v1/ops/parked/{patient}/release"))
            assert refused.status_code == 403
