"""Every error answer of the running services is an RFC 9457 problem document, over real HTTP.

The route walk of tests/problem_walk.py, each service's routes found in its app: the cheap failures
(401, 404 for no route, 405, 413 declared and streamed, 422) through uvicorn, and what needs the database:
each role a route does not admit (403, after its audit row is written) and each read of an id nobody has
(404). tests/e2e/test_hostile_input.py checks the same of every answer to its hostile requests (404, 409, 422).
"""

from __future__ import annotations

import httpx
import pytest

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from carecoord_shared.service import create_app
from tests import problem_walk as walk
from tests.services import built, settings_for

pytestmark = pytest.mark.e2e


def _client(stack: Stack, service: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.services[service].url, timeout=10)


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_of_a_running_service_answers_its_failures_with_problem_documents(
    services: Stack, service: str
) -> None:
    app = create_app(built(service), settings_for(service))
    refusals = list(walk.role_cases(app))
    assert refusals, f"{service}: no route refuses any role?"
    async with _client(services, service) as client:
        for case in [*walk.cases(app), *refusals]:
            walk.assert_problem(await walk.send(client, case), case.status)


async def test_reads_of_ids_nobody_has_answer_with_problem_documents(services: Stack) -> None:
    statuses = []
    for service in SERVICES:
        app = create_app(built(service), settings_for(service))
        async with _client(services, service) as client:
            for case in walk.unknown_id_cases(app):
                response = await walk.send(client, case)
                statuses.append(response.status_code)
                if response.status_code >= 400:
                    walk.assert_problem(response)
    assert 404 in statuses, f"no read answered an unknown id with 404: {sorted(set(statuses))}"


@pytest.mark.parametrize("service", SERVICES)
async def test_a_running_service_documents_its_error_answers_as_problems(services: Stack, service: str) -> None:
    async with _client(services, service) as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    walk.assert_documents_problems(response.json())
