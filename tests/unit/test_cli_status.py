"""`carecoord status` sees a stall that readiness alone hides (issue 19).

A service stays ready (HTTP 200) while one partition or one patient's key is
stuck; its readiness body says so, and the status must then exit non-zero and
say what is wrong and what to do. Canned bodies: today's (no stall fields), the
new ones, and odd or hostile ones, which must never raise.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from carecoord_cli import status as health
from carecoord_cli.config import Target
from carecoord_cli.main import out, show_status
from carecoord_cli.stalls import MAX_LISTED, MAX_TEXT, problems
from carecoord_contracts.topics import SERVICES

FINE: dict[str, Any] = {
    "status": "ok",
    "service": "safety",
    "checks": {
        "database": "ok",
        "kafka": "ok",
        "outbox": {"backlog": 0, "oldest_age_s": None, "parked_keys": 0, "parked": []},
        "consumer": {"stalled_partitions": [], "parked_keys": 0, "undecodable_skipped": 0},
    },
    "degraded": [],
}
# What a service sent before issue 19: no consumer check, an outbox without parked keys, no degraded list.
OLDER: dict[str, Any] = {
    "status": "ok",
    "service": "safety",
    "checks": {"database": "ok", "kafka": "ok", "outbox": {"backlog": 3, "oldest_age_s": 0.4}},
}
STALL = {"topic": "patient-app.reports", "partition": 0, "lag": 1, "stalled_s": 312.5}


def _with(**changes: Any) -> dict[str, Any]:
    """FINE with checks.consumer / checks.outbox fields (``consumer__x=...``) or top-level ones changed."""
    body = copy.deepcopy(FINE)
    for name, value in changes.items():
        if "__" in name:
            check, field = name.split("__")
            body["checks"][check][field] = value
        else:
            body[name] = value
    return body


def test_a_fine_body_and_an_older_service_s_body_have_no_problem() -> None:
    assert problems("safety", FINE) == []
    assert problems("safety", OLDER) == []


def test_a_stalled_partition_is_a_problem_with_where_how_long_and_what_to_do() -> None:
    [problem] = problems("safety", _with(consumer__stalled_partitions=[STALL]))
    assert "patient-app.reports[0]" in problem.what and "312s" in problem.what and "1 record" in problem.what
    assert "carecoord dlq list" in problem.todo and "log" in problem.todo


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_with(consumer__parked_keys=2), ["2 patient key(s) parked in the consumer"]),
        (_with(outbox__parked_keys=1), ["1 patient key(s) parked in the outbox"]),
        (_with(outbox__oldest_age_s=61.0), ["oldest unsent event is 61s old"]),
        (
            _with(degraded=["consumer: the consume loop is not running", "outbox: 1 key(s) parked"]),
            ["reports itself degraded: consumer: the consume loop is not running; outbox: 1 key(s) parked"],
        ),
    ],
)
def test_parked_keys_an_ageing_outbox_and_the_service_s_own_reasons_are_problems(
    body: dict[str, Any], words: list[str]
) -> None:
    [problem] = problems("dosing", body)
    assert all(w in problem.what for w in words), problem
    assert problem.todo


def test_the_outbox_age_threshold_is_the_operator_s() -> None:
    body = _with(outbox__oldest_age_s=45.0)
    assert problems("intake", body) == []
    assert len(problems("intake", body, max_outbox_age_s=30)) == 1
    assert problems("intake", _with(outbox__oldest_age_s=61.0), max_outbox_age_s=120) == []


def test_the_parked_keys_themselves_are_never_shown() -> None:
    """They are patient ids: the status counts them, `--json` passes the service's checks through as they are."""
    body = _with(outbox__parked_keys=1, outbox__parked=[{"key": "8d1f0c8e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"}])
    assert "8d1f0c8e" not in repr(problems("billing", body))


HOSTILE: list[Any] = [
    None,
    [],
    "ok",
    12,
    {"checks": "ok"},
    {"checks": {"consumer": "unavailable: OperationalError", "outbox": "unavailable: OperationalError"}},
    {"checks": {"consumer": {"stalled_partitions": "many", "parked_keys": "3", "undecodable_skipped": None}}},
    {
        "checks": {
            "consumer": {
                "stalled_partitions": [None, 7, "x", {"topic": 5, "partition": "zero", "lag": [], "stalled_s": {}}]
            }
        }
    },
    {
        "checks": {
            "consumer": {"parked_keys": True},
            "outbox": {"parked_keys": float("nan"), "oldest_age_s": float("inf")},
        }
    },
    {"checks": {"outbox": {"oldest_age_s": "61", "parked_keys": -4}}},
    {"degraded": "everything"},
    {"degraded": [None, 3, {"reason": "x"}]},
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_odd_bodies_raise_nothing_and_make_up_no_problem(body: Any) -> None:
    found = problems("safety", body)
    # A stall entry that is not an object still says a partition is stalled (the service said so); nothing else counts.
    assert all("stalled" in p.what for p in found), found


def test_a_flood_of_stalls_or_reasons_is_cut_short_and_escapes_are_neutralised() -> None:
    body = _with(
        consumer__stalled_partitions=[dict(STALL, partition=i) for i in range(500)],
        degraded=["\x1b[2J\x1b[31mcleared your screen\n"] + ["x" * 10_000] * 50,
    )
    found = problems("safety", body)
    assert len(found) == MAX_LISTED + 1 + 1
    assert "490 more stalled partition(s)" in found[MAX_LISTED].what
    assert found[-1].what.endswith("; and 41 more")
    assert all("\x1b" not in p.what and "\n" not in p.what for p in found)
    assert all(len(p.what) < 200 for p in found[:-1]) and len(found[-1].what) < (MAX_LISTED + 1) * (MAX_TEXT + 2) + 40


# --- Through the HTTP read and the report -------------------------------------------------------


async def _read(body: bytes, status_code: int = 200) -> health.ServiceStatus:
    service = health.ServiceStatus("safety", "http://safety.test")
    transport = httpx.MockTransport(lambda _request: httpx.Response(status_code, content=body))
    async with httpx.AsyncClient(transport=transport) as http:
        await health._health(http, service, 60.0)
    return service


async def test_a_ready_service_that_reports_a_stall_makes_the_report_unhealthy() -> None:
    stalled = await _read(json.dumps(_with(consumer__stalled_partitions=[STALL])).encode())
    assert stalled.ready and stalled.problems
    fine = [await _read(json.dumps(FINE).encode()) for _ in SERVICES[1:]]
    assert health.Report([*fine], kafka_reachable=True).healthy
    assert not health.Report([stalled, *fine], kafka_reachable=True).healthy
    assert health.Report([await _read(json.dumps(OLDER).encode()), *fine], kafka_reachable=True).healthy


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"[1, 2]", b'"ok"', b"null"])
async def test_something_other_than_carecoord_s_health_is_a_problem_of_that_service_only(body: bytes) -> None:
    service = await _read(body)
    assert service.reachable and not service.ready
    assert ["not carecoord's health" in p.what for p in service.problems] == [True]


async def test_checks_that_are_not_an_object_are_read_as_none() -> None:
    service = await _read(b'{"status": "ok", "checks": [1]}')
    assert service.ready and service.checks == {} and service.problems == []


def test_the_table_says_what_is_wrong_and_what_to_do_and_exits_non_zero() -> None:
    services = [
        health.ServiceStatus(s, f"http://{s}.test", ready=True, reachable=True, lag={}, dead_letters=0)
        for s in SERVICES
    ]
    services[3].problems = problems(
        "safety", _with(consumer__stalled_partitions=[STALL], outbox__oldest_age_s="[red]x[/]")
    )
    services[3].checks = _with(outbox__oldest_age_s="[red]x[/]", outbox__backlog="[bold]2[/bold]")["checks"]
    with out.capture() as shown:
        code = show_status(health.Report(services, kafka_reachable=True), Target(), as_json=False)
    text = shown.get()
    assert code == 1 and "unhealthy" in text
    assert "safety" in text and "patient-app.reports[0] stalled for 312s" in text and "what to do:" in text
    assert "[bold" in text, "a service's text is shown as it is (cut to the column), never read as markup"

    services[3].problems = []
    with out.capture() as shown:
        assert show_status(health.Report(services, kafka_reachable=True), Target(), as_json=False) == 0
    assert "healthy" in shown.get() and "what to do" not in shown.get()
