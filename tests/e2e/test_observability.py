"""Observability end to end: one trace per report across every service and Kafka hop,
trace ids on every log line written while handling an event, and no PHI anywhere an
operator looks (logs, spans, span events, metric labels, Kafka keys and headers)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from carecoord_contracts import ALL_TOPICS
from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.e2e.intake_journeys import complete_intake, register, registration
from tests.kafka_io import publish_raw, read_topic

pytestmark = pytest.mark.e2e


def _spans(stack: Stack) -> list[dict[str, Any]]:
    spans = []
    for path in (stack.state_dir / "traces").glob("*.jsonl"):
        spans += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return spans


def _log_lines(stack: Stack, service: str) -> list[dict[str, Any]]:
    lines = []
    for line in stack.services[service].log_file.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


async def _hold_consumed_span(stack: Stack, patient: uuid.UUID) -> dict[str, Any] | None:
    """Dosing's handling of the patient's treatment hold: by the event's type, as dosing also consumes
    events of the patient that no report caused (the treatment consent signed before the plan)."""
    return next(
        (
            s
            for s in _spans(stack)
            if s["kind"] == "CONSUMER"
            and s["service"] == "carecoord-dosing"
            and s["attributes"].get("messaging.kafka.message.key") == str(patient)
            and s["attributes"].get("carecoord.event.type") == "TreatmentHoldRequested"
        ),
        None,
    )


def _hops(spans: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(producing service, consuming service) of each consume span whose parent is exported."""
    by_id = {s["span_id"]: s for s in spans}
    return {
        (by_id[c["parent_span_id"]]["service"], c["service"])
        for c in spans
        if c["kind"] == "CONSUMER" and c["parent_span_id"] in by_id
    }


async def _trace_reaches(stack: Stack, trace_id: str, hops: set[tuple[str, str]]) -> list[dict[str, Any]] | None:
    """The trace once it made every hop and every exported span's parent is exported too.

    Spans are exported in batches when they end, so a child can land before its parent (and scheduling
    hears of a report from safety before it hears of the pause from dosing)."""
    spans = [s for s in _spans(stack) if s["trace_id"] == trace_id]
    ids = {s["span_id"] for s in spans}
    complete = all(s["parent_span_id"] is None or s["parent_span_id"] in ids for s in spans)
    return spans if complete and hops <= _hops(spans) else None


async def test_a_severe_report_is_one_trace_from_safety_through_dosing_to_scheduling_and_billing(
    services: Stack,
) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    assert (await journeys.report(services, patient, symptoms=["chest_pain"], grade=3)).status_code == 201

    consumed = await eventually(lambda: _hold_consumed_span(services, patient), what="dosing's consume span exported")
    # Every service acts on a severe report: dosing holds and pauses, scheduling cancels and books the
    # review, billing journals the review, and intake and engagement learn who has the review (the access
    # it grants, ADR 0015; engagement's tasks, ADR 0017). Only events a service handles get a consume
    # span (billing skips the plan's pause, so no dosing -> billing hop).
    hops = {
        ("carecoord-safety", "carecoord-dosing"),
        ("carecoord-dosing", "carecoord-scheduling"),
        ("carecoord-safety", "carecoord-billing"),
        ("carecoord-safety", "carecoord-scheduling"),
        ("carecoord-safety", "carecoord-intake"),
        ("carecoord-safety", "carecoord-engagement"),
    }
    spans = await eventually(lambda: _trace_reaches(services, consumed["trace_id"], hops), what="the trace's hops")
    by_id = {s["span_id"]: s for s in spans}

    [root] = [s for s in spans if s["parent_span_id"] is None]
    assert (root["service"], root["kind"]) == ("carecoord-safety", "SERVER")
    assert "/v1/side-effect-reports" in root["name"]
    # One span per request from the HTTP layer: no ASGI send/receive children (each one a span's CPU and export).
    assert not [s["name"] for s in spans if s["name"].endswith((" http send", " http receive"))]
    for span in spans:  # no broken chains: every span's ancestors are in the trace, up to the root
        seen, current = set(), span
        while current["parent_span_id"] is not None:
            assert current["parent_span_id"] in by_id, f"{current['service']} {current['name']} lost its parent"
            assert current["span_id"] not in seen
            seen.add(current["span_id"])
            current = by_id[current["parent_span_id"]]
        assert current is root

    consumers = [s for s in spans if s["kind"] == "CONSUMER"]
    for consumer in consumers:
        producer = by_id[consumer["parent_span_id"]]
        assert producer["kind"] == "PRODUCER", "each Kafka hop is parented on the publish span"
        assert consumer["attributes"]["messaging.system"] == "kafka"
        assert consumer["attributes"]["messaging.kafka.message.key"] == str(patient), "keys recorded as text"
    # Dosing's statements handling the hold are one CLIENT span under its consume span, listing each
    # statement with its duration, placeholders and never a value.
    [tx] = [s for s in spans if s["parent_span_id"] == consumed["span_id"] and s["name"] == "sql"]
    assert (tx["kind"], tx["attributes"]["db.system"]) == ("CLIENT", "postgresql")
    statements, durations = tx["attributes"]["db.statements"], tx["attributes"]["db.statement_durations_ms"]
    assert tx["attributes"]["db.statement_count"] == len(statements) == len(durations) >= 1
    assert all(d >= 0 for d in durations)
    assert str(patient) not in json.dumps(tx)
    relay_publishes = [s for s in spans if s["kind"] == "PRODUCER" and s["service"] == "carecoord-safety"]
    assert relay_publishes and all(by_id[p["parent_span_id"]]["service"] == "carecoord-safety" for p in relay_publishes)

    # Every line the consumer wrote while handling an event of this trace carries the trace id.
    handled = [
        line
        for line in _log_lines(services, "dosing")
        if line.get("correlation_id") and line.get("event_type") == "TreatmentHoldRequested"
    ]
    mine = [line for line in handled if line.get("trace_id") == consumed["trace_id"]]
    assert mine, "dosing logged its handling of the hold"
    assert all("trace_id" in line and "span_id" in line for line in handled)


async def test_every_log_line_written_while_handling_an_event_carries_a_trace_id(services: Stack) -> None:
    for service in SERVICES:
        during = [line for line in _log_lines(services, service) if line.get("event_id")]
        assert all(line.get("trace_id") for line in during), [line for line in during if not line.get("trace_id")][:3]


async def _metrics_with_lag(stack: Stack) -> str | None:
    async with api_client(timeout=10) as http:
        text = (await http.get(journeys.url(stack, "dosing", "/metrics"))).text
    return text if 'topic="safety.holds"' in text else None


async def test_metrics_are_exposed_with_event_types_and_outcomes(services: Stack) -> None:
    # The lag gauge is refreshed every few seconds from the consumer's positions.
    text = await eventually(lambda: _metrics_with_lag(services), what="consumer lag measured")

    def series(name: str, **labels: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
        ]

    [consumed] = series("carecoord_events_consumed_total", event_type="TreatmentHoldRequested", outcome="processed")
    assert float(consumed.rsplit(" ", 1)[1]) >= 1
    assert series("carecoord_handler_duration_seconds_bucket", event_type="TreatmentHoldRequested")
    assert series("carecoord_events_published_total", event_type="TreatmentPlanPaused")
    assert series("carecoord_outbox_backlog")
    assert series("carecoord_consumer_lag", topic="safety.holds")


CANARIES = {
    "first_name": "Zqxvcanaryfirst",
    "last_name": "Zqxvcanarylast",
    "email": "zqxv.canary@example.org",
    "phone": "+1 303 555 0199",
    "member_id": "ZQXVCANARYMEMBER",
    "note": "zqxv canary free text",
    "dob": "1951-03-17",
}


async def test_phi_canaries_never_reach_logs_spans_metrics_or_kafka_keys_and_headers(services: Stack) -> None:
    c = CANARIES
    body = registration(
        first_name=c["first_name"], last_name=c["last_name"], email=c["email"], phone=c["phone"], date_of_birth=c["dob"]
    )
    coverage = (
        "PUT",
        "/coverage",
        {"kind": "insurance", "payer_id": "BCBSCO", "member_id": c["member_id"], "plan": "Gold"},
    )
    patient = await complete_intake(services, body, coverage=coverage)  # the happy path

    # Error paths: refused registrations and reports that carry the canaries.
    bad = registration(
        first_name=c["first_name"], last_name=c["last_name"], date_of_birth="2999-01-01", email=c["email"]
    )
    assert (await register(services, bad)).status_code == 422
    assert (
        await journeys.report(services, uuid.UUID(patient), symptoms=["nausea"], grade=9, note=c["note"])
    ).status_code == 422
    assert (
        await journeys.report(services, uuid.UUID(patient), symptoms=["nausea"], grade=2, note=c["note"])
    ).status_code == 201
    async with api_client(timeout=10) as http:
        claim = await http.get(journeys.url(services, "intake", f"/v1/internal/patients/{patient}/claim-demographics"))
        assert claim.status_code == 200 and claim.json()["first_name"] == c["first_name"]
    # The dead-letter path: an invalid report with free text, straight onto the topic.
    poisoned = {
        "event_id": str(uuid.uuid4()),
        "type": "SideEffectReportSubmitted",
        "version": 2,
        "occurred_at": "2026-11-27T08:00:00Z",
        "producer": "patient-app",
        "patient_id": patient,
        "correlation_id": str(uuid.uuid4()),
        "payload": {
            "report_id": str(uuid.uuid4()),
            "symptoms": ["nausea"],
            "grade": 99,
            "note": c["note"],
            "name": c["first_name"],
        },
    }
    await publish_raw(services.kafka.bootstrap, "patient-app.reports", json.dumps(poisoned).encode(), patient.encode())
    await eventually(lambda: _dead_lettered(services, poisoned["event_id"]), what="the poisoned report dead-lettered")

    for service in services.services.values():  # let batched span exports land
        assert service.running()
    await eventually(lambda: _spans_mention(services, patient), what="spans of this patient exported")

    haystacks: dict[str, str] = {}
    for name, service in services.services.items():
        haystacks[f"log of {name}"] = await asyncio.to_thread(Path(service.log_file).read_text)
        async with api_client(timeout=10) as http:
            haystacks[f"metrics of {name}"] = (await http.get(f"{service.url}/metrics")).text
    for path in (services.state_dir / "traces").glob("*.jsonl"):
        haystacks[f"spans {path.name}"] = path.read_text()
    for topic in ALL_TOPICS:
        for record in await read_topic(services.kafka.bootstrap, topic.name):
            haystacks.setdefault(f"keys and headers of {topic.name}", "")
            haystacks[f"keys and headers of {topic.name}"] += repr(record.key) + repr(record.headers)

    # Positive control: the places searched do hold this patient's traffic (by its pseudonymous id).
    assert any(patient in text for where, text in haystacks.items() if where.startswith("log of"))
    assert any(patient in text for where, text in haystacks.items() if where.startswith("spans"))
    assert any(patient in text for where, text in haystacks.items() if where.startswith("keys and headers"))
    leaks = [
        (where, canary)
        for where, text in haystacks.items()
        for canary in CANARIES.values()
        if canary.lower() in text.lower()
    ]
    assert leaks == []


async def _dead_lettered(stack: Stack, event_id: str) -> bool:
    return any(
        json.loads(r.value).get("event_id") == event_id
        for r in await read_topic(stack.kafka.bootstrap, "deadletter.safety")
    )


async def _spans_mention(stack: Stack, patient: str) -> bool:
    return any(patient in json.dumps(s["attributes"]) for s in _spans(stack))
