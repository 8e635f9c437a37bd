"""Every error answer of every service is an RFC 9457 problem document (application/problem+json), in-process.

The route walk (tests/problem_walk.py) finds each service's routes in its app and sends what fails before a
route reaches its database; a router added here raises each domain error, a database outage and a bug, through
the same create_app. The statuses that need the database (403 with its audit row, 404 of an unknown id) are
walked by tests/e2e/test_problem_details.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from structlog.testing import capture_logs

from carecoord_cli.http import _message
from carecoord_contracts.topics import SERVICES
from carecoord_shared import errors
from carecoord_shared.http.problems import DOMAIN_PROBLEMS, all_types, domain_problem
from carecoord_shared.service import ServiceApp, create_app
from tests import problem_walk as walk
from tests.services import built, settings_for


def _app(service: str, *routers: APIRouter) -> ServiceApp:
    definition = built(service)
    return create_app(dataclasses.replace(definition, routers=(*definition.routers, *routers)), settings_for(service))


def _client(app: ServiceApp) -> httpx.AsyncClient:
    # No lifespan: nothing connects; an exception the app re-raises after its 500 answer stays in the app.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


def test_every_domain_error_class_has_its_problem_type() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    ]
    assert classes
    missing = [cls.__name__ for cls in classes if cls not in DOMAIN_PROBLEMS]
    assert missing == [], "add each error class to carecoord_shared.http.problems.DOMAIN_PROBLEMS"
    codes = [kind.code for kind in DOMAIN_PROBLEMS.values()]
    assert len(codes) == len(set(codes)), codes


def test_a_subclass_answers_as_its_own_entry_or_else_as_its_base() -> None:
    assert domain_problem(errors.LimitExceeded("r", "m")) is DOMAIN_PROBLEMS[errors.LimitExceeded]

    class Narrower(errors.NotFound):
        pass

    assert domain_problem(Narrower("gone")) is DOMAIN_PROBLEMS[errors.NotFound]


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_answers_each_cheap_failure_with_a_problem_document(service: str) -> None:
    app = _app(service)
    cases = list(walk.cases(app))
    assert {c.status for c in cases} >= {401, 404, 413, 422}, "the walk tries each kind"
    async with _client(app) as client:
        for case in cases:
            walk.assert_problem(await walk.send(client, case), case.status)


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_documents_its_error_answers_as_problems_in_the_openapi(service: str) -> None:
    walk.assert_documents_problems(_app(service).openapi())


def _failing_router() -> APIRouter:
    router = APIRouter(prefix="/v1/test-failures")
    raised: dict[str, Exception] = {
        "rule": errors.RuleViolation("the plan is not active"),
        "limit": errors.LimitExceeded("max_dose_above_program_maximum", "above the program's 300 mg"),
        "missing": errors.NotFound("no such plan"),
        "not-ready": errors.NotReady("the rules are still loading"),
        "database": ConnectionRefusedError("connection refused to 10.0.0.1"),
        "bug": RuntimeError("patient Jane Roe broke it"),
    }

    def raising(exc: Exception) -> Any:
        async def fail() -> None:
            raise exc

        return fail

    for name, exc in raised.items():
        fail = raising(exc)
        router.add_api_route(f"/{name}", fail, methods=["GET"])
        router.add_api_route(f"/{name}", fail, methods=["POST"])
    return router


async def test_each_domain_error_a_database_outage_and_a_bug_answer_with_their_problem_types() -> None:
    async with _client(_app("dosing", _failing_router())) as client:

        async def problem(path: str, status: int, method: str = "GET") -> dict[str, Any]:
            response = await client.request(method, f"/v1/test-failures/{path}?patient=jane")
            return walk.assert_problem(response, status)

        rule = await problem("rule", 409)
        assert (rule["code"], rule["detail"]) == ("rule_violation", "the plan is not active")
        limit = await problem("limit", 422)
        assert (limit["code"], limit["reason"]) == ("limit_exceeded", "max_dose_above_program_maximum")
        assert (await problem("missing", 404))["code"] == "not_found"
        assert (await problem("not-ready", 503))["retry_after"] == 1
        read = await problem("database", 503)
        assert (read["code"], read["retry_after"]) == ("unavailable", 1)
        write = await problem("database", 503, "POST")
        assert "retry_after" not in write and "same id" in write["detail"]
        with capture_logs() as logs:
            bug = await problem("bug", 500)
    assert bug["code"] == "internal_error" and "Jane" not in bug["detail"] and "RuntimeError" not in str(bug)
    [logged] = [entry for entry in logs if entry["event"] == "http.unhandled"]
    assert logged["error"] == "RuntimeError" and "Jane" not in str(logged), "logged with the class, not the message"


def test_the_cli_prints_a_problems_title_and_detail() -> None:
    problem = {"type": walk.TYPE_BASE + "not_found", "title": "Not found", "status": 404, "detail": "no such plan"}
    response = httpx.Response(404, json={**problem, "instance": "/v1/plans/x", "code": "not_found"})
    assert _message(response) == "Not found: no such plan"
    assert _message(httpx.Response(502, text="Bad Gateway")) == "Bad Gateway"


def test_docs_api_errors_lists_every_problem_type() -> None:
    text = (Path(__file__).parents[2] / "docs" / "api-errors.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[3].strip()
        for line in text.splitlines()
        if line.startswith("| `")
    }
    assert {kind.code: str(kind.status) for kind in all_types()}.items() <= rows.items()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: uuid.UUID


async def test_an_invalid_request_names_the_fields_without_repeating_what_was_sent() -> None:
    router = APIRouter()

    @router.post("/echo-test")
    async def echo(body: _Strict) -> dict[str, str]:
        return {}

    async with _client(_app("safety", router)) as client:
        answer = await client.post("/echo-test", json={"patient_id": "Jane-Doe-1970", "surplus": 1})
    assert answer.status_code == 422
    assert "Jane" not in answer.text, answer.text
    assert "`" not in answer.text and "found" not in answer.text, "pydantic quotes the character it found"
    assert {e["field"] for e in answer.json()["errors"]} == {"patient_id", "surplus"}


async def test_head_answers_what_get_answers_without_the_body() -> None:
    app = _app("dosing")
    async with _client(app) as client:
        for path in ("/health/live", f"/v1/plans/{uuid.uuid4()}"):
            got, head = await client.get(path), await client.head(path)
            assert head.status_code == got.status_code, path
            assert head.content == b"" and got.content, path
            assert head.headers["content-type"] == got.headers["content-type"], path
            assert head.headers.get("www-authenticate") == got.headers.get("www-authenticate"), path
        # A method no route takes is still a 405 problem, listing what the path takes (HEAD served via GET).
        deleted = await client.delete("/health/live")
        assert deleted.status_code == 405 and "GET" in deleted.headers["allow"]
