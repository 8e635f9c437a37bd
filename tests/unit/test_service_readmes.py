"""Each service's README says what the code says the service has, and ARCHITECTURE.md what they all share.

Read from the code, whatever the modules are called: the service as its composition root builds it
(``tests/services.py``), the HTTP routes of the built FastAPI app (as
test_route_policies.py collects them) with the roles their ``allow(...)`` admits, the topics of the
registry with the events the service publishes there or handles, its own settings, its tables and its
rule files. A route, topic, event, setting, table or rule file the README misses fails here.

The README formats these rows take (one line each):

    | `POST /v1/plans` | clinician (licensed), service | ... |        routes: the roles are the first
    | `dosing.plans` | publishes | `TreatmentPlanCreated`, ... |      word of each comma-separated item
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic_settings import BaseSettings

from carecoord_contracts import topics
from carecoord_contracts.topics import SERVICES
from carecoord_shared.auth import Role
from carecoord_shared.config import ServiceSettings
from carecoord_shared.http import admitted_roles
from carecoord_shared.service import ServiceDefinition, create_app
from tests import services

REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = {str(role) for role in Role}


@dataclass(frozen=True)
class Built:
    definition: ServiceDefinition
    app: FastAPI


_built: dict[str, Built] = {}


def built(service: str) -> Built:
    """The service as its composition root builds it (tests/services.py: the one way tests reach one)."""
    if service not in _built:
        definition = services.built(service)
        _built[service] = Built(definition, create_app(definition, services.settings_for(service)))
    return _built[service]


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (as test_route_policies.py walks them)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


def routes_of(service: str) -> dict[str, set[str]]:
    """'METHOD /path' -> the roles it admits (empty: open to anyone)."""
    out: dict[str, set[str]] = {}
    for route in api_routes(built(service).app.routes):
        roles = {str(r) for r in admitted_roles(route) or ()}
        for method in (route.methods or set()) - {"HEAD"}:
            out[f"{method} {route.path}"] = roles
    return out


def handled_by(service: str) -> set[str]:
    """The event types the service registers handlers for, through the consumer's public ``on``."""

    class Recorder:
        def __init__(self) -> None:
            self.types: set[str] = set()

        def on(self, event_cls: Any) -> Any:
            self.types.add(event_cls.event_type)
            return lambda fn: fn

    recorder = Recorder()
    built(service).definition.register_handlers(recorder)
    return recorder.types


def tables_of(service: str) -> set[str]:
    return set(built(service).definition.metadata.tables)


def own_settings(service: str) -> set[str]:
    """CARECOORD_ variables the service's own settings classes read beyond every service's."""
    try:
        module = importlib.import_module(f"carecoord_{service}.settings")
    except ModuleNotFoundError:
        return set()
    shared = set(ServiceSettings.model_fields)
    return {
        f"{cls.model_config.get('env_prefix', '')}{field}".upper()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__
        for field in cls.model_fields
        if field not in shared
    }


def rule_files(service: str) -> set[str]:
    package = Path(next(iter(importlib.import_module(f"carecoord_{service}").__path__)))
    return {p.name for p in package.rglob("*.toml")}


def common_routes() -> dict[str, set[str]]:
    """Routes every service has (health, metrics, AsyncAPI, parked events): ARCHITECTURE.md names them once."""
    each = [routes_of(s) for s in SERVICES]
    return {r: roles for r, roles in each[0].items() if all(r in other for other in each[1:])}


def common_tables() -> set[str]:
    return set.intersection(*(tables_of(s) for s in SERVICES))


# --- reading the documents ---------------------------------------------------------------------------------


def readme(service: str) -> str:
    path = REPO_ROOT / "services" / service / "README.md"
    assert path.exists(), f"{path.relative_to(REPO_ROOT)} is missing"
    return path.read_text()


def row(text: str, first_cell: str) -> list[str] | None:
    """The cells of the table row whose first cell is ``first_cell`` (in backticks), or None."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.lstrip().startswith("|") and cells and cells[0] == f"`{first_cell}`":
            return cells
    return None


def roles_in(cell: str) -> set[str]:
    """'patient (own id), clinician (licensed), service' -> {'patient', 'clinician', 'service'}; 'anyone' -> {}."""
    words = {m.group(1) for m in re.finditer(r"(?:^|,)\s*([a-z]+)", cell)}
    return words & ROLES


def backticked(text: str) -> set[str]:
    """Every `inline code` span (fenced blocks left out: their ``` would pair up wrongly)."""
    return set(re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)))


def check_routes(text: str, routes: dict[str, set[str]], where: str) -> list[str]:
    problems = []
    for route, roles in sorted(routes.items()):
        cells = row(text, route)
        if cells is None:
            problems.append(f"{where}: no row for `{route}`")
        elif len(cells) < 2 or roles_in(cells[1]) != roles:
            problems.append(
                f"{where}: `{route}` admits {sorted(roles) or 'anyone'}, the README says {cells[1:2] or '-'}"
            )
    return problems


# --- the tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_the_readme_lists_every_route_of_the_service_with_who_may_call_it(service: str) -> None:
    shared = common_routes()
    own = {r: roles for r, roles in routes_of(service).items() if r not in shared}
    assert own, f"{service} has no routes of its own?"
    assert check_routes(readme(service), own, f"services/{service}/README.md") == []


def test_architecture_lists_the_routes_every_service_has() -> None:
    shared = common_routes()
    assert "GET /health/ready" in shared and "GET /v1/ops/parked" in shared
    assert check_routes((REPO_ROOT / "ARCHITECTURE.md").read_text(), shared, "ARCHITECTURE.md") == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_readme_lists_every_topic_the_service_publishes_and_consumes_with_its_events(service: str) -> None:
    text, handled = readme(service), handled_by(service)
    expected = {t.name: ("publishes", set(t.events)) for t in topics.ALL_TOPICS if t.producer == service}
    for t in topics.ALL_TOPICS:
        if service in t.consumers:
            expected[t.name] = ("consumes", set(t.events) & handled)
    assert expected, f"{service} has no topics?"
    problems = []
    for name, (direction, events) in sorted(expected.items()):
        cells = row(text, name)
        if cells is None:
            problems.append(f"no row for `{name}` ({direction})")
            continue
        if len(cells) < 3 or cells[1] != direction or backticked(cells[2]) != events:
            problems.append(f"`{name}`: {direction} {sorted(events)}; the README says {cells[1:3]}")
    assert problems == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_readme_names_the_services_own_tables_settings_and_rule_files(service: str) -> None:
    named = backticked(readme(service))
    missing = {
        "tables": sorted(tables_of(service) - common_tables() - named),
        "settings": sorted(own_settings(service) - named),
        "rule files": sorted(rule_files(service) - named),
    }
    assert missing == {"tables": [], "settings": [], "rule files": []}


def test_architecture_names_the_tables_every_service_has() -> None:
    shared = common_tables()
    assert {"inbox", "outbox", "parked_events", "audit_log"} <= shared
    assert shared - backticked((REPO_ROOT / "ARCHITECTURE.md").read_text()) == set()
