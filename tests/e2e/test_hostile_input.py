"""Hostile input against every input topic and every HTTP endpoint.

Bad payloads generated from the real contracts (event schemas, the envelope)
and from each running service's OpenAPI document. Every one must be rejected:
dead-lettered with a reason or skipped (unknown event type) on Kafka, a 4xx
over HTTP. No crash, no 5xx, no dropped connection, no business row for the
hostile patient ids, and valid severe reports interleaved with the hostile
traffic still pause their plans. CARECOORD_SOAK=1 runs every generated case
instead of a bounded sample per event type.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from carecoord_contracts import BUSINESS_TOPICS, CATALOG, Envelope
from carecoord_contracts.topics import SERVICES, Topic
from carecoord_devstack.stack import Stack
from tests import hostile, problem_walk
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import group_caught_up, read_topic

pytestmark = pytest.mark.e2e

SOAK = os.environ.get("CARECOORD_SOAK") == "1"
PAYLOAD_CASES_PER_EVENT = None if SOAK else 10
KAFKA_OVERSIZED = 900_000  # the broker refuses records above 1 MiB before any consumer sees them
HTTP_CONCURRENCY = 6
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FUTURE = "2999-01-01T00:00:00Z"


@dataclass
class KafkaCase:
    topic: Topic
    label: str
    value: bytes
    patient: uuid.UUID
    partition: int = -1
    offset: int = -1


@dataclass
class HttpCase:
    service: str
    method: str
    path: str
    label: str
    body: bytes | None


# --- Kafka ---------------------------------------------------------------------------------------


def _envelope(event_type: str, payload: Any, patient: uuid.UUID) -> dict[str, Any]:
    model = CATALOG[event_type]
    event_id = uuid.uuid4()
    return {
        "event_id": str(event_id),
        "type": event_type,
        "version": model.version,
        "occurred_at": "2026-01-01T10:00:00Z",
        "producer": "hostile-test",
        "patient_id": str(patient),
        "correlation_id": str(event_id),
        "causation_id": None,
        "payload": payload,
    }


def _sample(cases: list[Any], limit: int | None) -> list[Any]:
    """An even, deterministic spread over the cases, so every field gets some."""
    if limit is None or len(cases) <= limit:
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def kafka_cases() -> list[KafkaCase]:
    cases: list[KafkaCase] = []
    env_schema = Envelope.model_json_schema()
    env_defs = env_schema.get("$defs", {})
    for topic in (t for t in BUSINESS_TOPICS if t.consumers):
        first = topic.events[0]
        schema = CATALOG[first].model_json_schema()
        valid_payload = hostile.example(schema, schema.get("$defs", {}))

        def add(label: str, value: bytes, patient: uuid.UUID, topic: Topic = topic) -> None:
            cases.append(KafkaCase(topic, label, value, patient))

        for case in hostile.whole_body_cases(oversized=KAFKA_OVERSIZED):
            add(f"body:{case.label}", case.body, uuid.uuid4())
        # Envelope-level defects around a valid payload.
        for label, bad in hostile.mutations(env_schema, env_defs, _envelope(first, valid_payload, uuid.uuid4())):
            add(f"envelope:{label}", hostile.encode(bad), uuid.uuid4())
        for label, change in {
            "unknown_version": {"version": 99},
            "version_zero": {"version": 0},
            "unknown_type": {"type": "NoSuchEventYet"},
            "future_occurred_at": {"occurred_at": FUTURE, "payload": {**valid_payload, "__hostile__": hostile.SQL}},
        }.items():
            patient = uuid.uuid4()
            add(f"envelope:{label}", hostile.encode({**_envelope(first, valid_payload, patient), **change}), patient)
        # Payload-level defects, one field at a time, for every event on the topic.
        for event_type in topic.events:
            schema = CATALOG[event_type].model_json_schema()
            defs = schema.get("$defs", {})
            base = hostile.example(schema, defs)
            bad_payloads = [("payload:array", [base]), ("payload:empty", {})] + list(
                hostile.mutations(schema, defs, base)
            )
            for label, bad in _sample(bad_payloads, PAYLOAD_CASES_PER_EVENT):
                patient = uuid.uuid4()
                add(f"{event_type}:{label}", hostile.encode(_envelope(event_type, bad, patient)), patient)
    return cases


async def publish_cases(bootstrap: str, cases: list[KafkaCase]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        sends = [await producer.send(c.topic.name, c.value, key=str(c.patient).encode()) for c in cases]
        for case, sent in zip(cases, sends, strict=True):
            meta = await sent
            case.partition, case.offset = meta.partition, meta.offset
    finally:
        await producer.stop()


def _event_id(value: bytes) -> uuid.UUID | None:
    try:
        return Envelope.model_validate_json(value).event_id
    except ValidationError:
        return None


# --- HTTP ----------------------------------------------------------------------------------------

PATH_ATTACKS = {
    "sql": hostile.SQL,
    "crlf": hostile.CRLF,
    "traversal": "../../../etc/passwd",
    "huge": "A" * 5000,
    "not_a_uuid": "not-a-uuid",
    "nul": "\x00",
}


def _path_example(param: dict[str, Any]) -> str:
    schema = param.get("schema", {})
    return str(uuid.uuid4()) if schema.get("format") == "uuid" else f"hostile-{uuid.uuid4().hex[:12]}"


def http_cases(service: str, openapi: dict[str, Any]) -> list[HttpCase]:
    defs = openapi.get("components", {}).get("schemas", {})
    cases: list[HttpCase] = []
    for template, operations in openapi["paths"].items():
        for method, op in operations.items():
            params = [p for p in op.get("parameters", []) if p.get("in") == "path"]
            body_schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body_schema is None and not params:
                continue
            good_path = {p["name"]: _path_example(p) for p in params}
            body = hostile.body_cases(body_schema, defs) if body_schema else []
            good_body = hostile.encode(hostile.example(body_schema, defs)) if body_schema else None
            for case in body:
                cases.append(
                    HttpCase(service, method.upper(), template.format(**good_path), f"body:{case.label}", case.body)
                )
            for p in params:
                schema = p.get("schema", {})
                attacks = {k: v for k, v in PATH_ATTACKS.items() if k != "not_a_uuid" or schema.get("format") == "uuid"}
                for label, value in attacks.items():
                    path = template.format(**{**good_path, p["name"]: urllib.parse.quote(value, safe="")})
                    cases.append(HttpCase(service, method.upper(), path, f"path:{p['name']}:{label}", good_body))
    return cases


async def send_http(stack: Stack, cases: list[HttpCase]) -> list[tuple[HttpCase, int | str]]:
    """Each case's status code, or the transport error's name when the connection broke; an error answer
    that is no problem document (RFC 9457, tests/problem_walk.py) is reported as ``not a problem: ...``."""
    limit = asyncio.Semaphore(HTTP_CONCURRENCY)
    async with api_client(timeout=30) as http:

        async def one(case: HttpCase) -> tuple[HttpCase, int | str]:
            async with limit:
                try:
                    response = await http.request(
                        case.method,
                        journeys.url(stack, case.service, case.path),
                        content=case.body,
                        headers={"content-type": "application/json"} if case.body is not None else {},
                    )
                    if response.status_code >= 400 and (issue := problem_walk.problem_issue(response)):
                        return case, f"not a problem: {issue}"
                    return case, response.status_code
                except httpx.HTTPError as exc:
                    return case, type(exc).__name__

        return await asyncio.gather(*(one(c) for c in cases))


# --- business rows -------------------------------------------------------------------------------

# The audit log records every authorised attempt, a hostile one that a rule then refuses (409)
# included: it is the record of who tried what, not state the request changed.
NOT_BUSINESS = {"inbox", "outbox", "alembic_version", "audit_log"}


def business_row_queries(service: str) -> dict[str, str]:
    """Per business table, a count of the rows about the hostile patients ($1), or of all rows
    when the table cannot be tied to a patient (clinicians, interchanges...)."""
    metadata = importlib.import_module(f"carecoord_{service}.models").metadata
    queries = {}
    for table in metadata.sorted_tables:
        if table.name in NOT_BUSINESS:
            continue
        if "patient_id" in table.c:
            queries[table.name] = f"SELECT count(*) FROM {table.name} WHERE patient_id = ANY($1::uuid[])"
            continue
        parent = next((fk for c in table.c for fk in c.foreign_keys if "patient_id" in fk.column.table.c), None)
        if parent is not None:
            p = parent.column.table.name
            queries[table.name] = (
                f"SELECT count(*) FROM {table.name} t JOIN {p} ON {p}.{parent.column.name} = t.{parent.parent.name} "
                f"WHERE {p}.patient_id = ANY($1::uuid[])"
            )
        else:
            queries[table.name] = f"SELECT count(*) FROM {table.name} WHERE $1::uuid[] IS NOT NULL"
    return queries


async def business_rows(stack: Stack, patients: list[uuid.UUID]) -> dict[str, int]:
    counts = {}
    for service in SERVICES:
        conn = await asyncpg.connect(stack.postgres.dsn(database=service))
        try:
            for table, sql in business_row_queries(service).items():
                counts[f"{service}.{table}"] = await conn.fetchval(sql, patients)
        finally:
            await conn.close()
    return counts


async def inbox_hits(stack: Stack, service: str, event_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    conn = await asyncpg.connect(stack.postgres.dsn(database=service))
    try:
        rows = await conn.fetch("SELECT event_id FROM inbox WHERE event_id = ANY($1::uuid[])", event_ids)
        return {r["event_id"] for r in rows}
    finally:
        await conn.close()


# --- the test ------------------------------------------------------------------------------------


async def test_hostile_input_is_rejected_without_crashes_or_rows_while_valid_traffic_flows(services: Stack) -> None:
    bootstrap = services.kafka.bootstrap
    async with api_client(timeout=10) as http:
        openapis = {s: (await http.get(journeys.url(services, s, "/openapi.json"))).json() for s in SERVICES}
    k_cases = kafka_cases()
    h_cases = [c for s in SERVICES for c in http_cases(s, openapis[s])]
    hostile_patients = {c.patient for c in k_cases} | {
        uuid.UUID(m.decode()) for c in h_cases for m in UUID_RE.findall((c.body or b"") + c.path.encode())
    }
    patients = sorted(hostile_patients)
    rows_before = await business_rows(services, patients)

    valid_patients = [uuid.uuid4() for _ in range(3)]
    for patient in valid_patients:
        await journeys.active_plan(services, patient)

    # Interleave: a valid severe report before, between and after the hostile waves.
    k_half, h_half = len(k_cases) // 2, len(h_cases) // 2
    results: list[tuple[HttpCase, int | str]] = []
    await _severe_report(services, valid_patients[0])
    await publish_cases(bootstrap, k_cases[:k_half])
    results += await send_http(services, h_cases[:h_half])
    await _severe_report(services, valid_patients[1])
    await publish_cases(bootstrap, k_cases[k_half:])
    results += await send_http(services, h_cases[h_half:])
    await _severe_report(services, valid_patients[2])

    # Kafka: every consumer group caught up, then each delivery accounted for.
    for topic in {c.topic.name: c.topic for c in k_cases}.values():
        for service in topic.consumers:
            await eventually(
                lambda s=service, t=topic.name: group_caught_up(bootstrap, f"carecoord.{s}", t),
                timeout=120,
                what=f"{service} caught up on {topic.name}",
            )
    letters: dict[str, dict[tuple[str, int, int], str]] = {}
    for service in SERVICES:
        letters[service] = {
            (d["original_topic"], d["original_partition"], d["original_offset"]): d["reason"]
            for d in (json.loads(r.value) for r in await read_topic(bootstrap, f"deadletter.{service}"))
        }
    outcomes: Counter[str] = Counter()
    accepted: list[str] = []
    lost: list[str] = []
    for service in SERVICES:
        mine = [c for c in k_cases if service in c.topic.consumers]
        ids = {id(c): _event_id(c.value) for c in mine}
        processed = await inbox_hits(services, service, [i for i in ids.values() if i is not None])
        for case in mine:
            reason = letters[service].get((case.topic.name, case.partition, case.offset))
            if reason:
                outcomes[f"dead-lettered ({reason})"] += 1
            elif ids[id(case)] in processed:
                accepted.append(f"{service} <- {case.topic.name} {case.label}")
            elif ids[id(case)] is None:
                lost.append(f"{service} <- {case.topic.name} {case.label}")  # an invalid envelope must be dead-lettered
            else:
                outcomes["skipped (event type not handled)"] += 1

    # HTTP: 4xx only.
    http_crashes = [
        f"{c.service} {c.method} {c.path[:80]} {c.label} -> {r}"
        for c, r in results
        if not isinstance(r, int) or r >= 500
    ]
    http_accepted = [
        f"{c.service} {c.method} {c.path[:80]} {c.label} -> {r}" for c, r in results if isinstance(r, int) and r < 400
    ]
    for _case, status in results:
        if isinstance(status, int) and 400 <= status < 500:
            outcomes[f"http {status}"] += 1

    alive = {s: services.services[s].running() for s in SERVICES}
    async with api_client(timeout=10) as http:
        ready = {s: (await http.get(journeys.url(services, s, "/health/ready"))).status_code for s in SERVICES}
    for patient in valid_patients:
        await eventually(lambda p=patient: _paused(services, p), timeout=60, what="valid severe report paused its plan")
    rows_after = await business_rows(services, patients)
    written = {t: rows_after[t] - rows_before[t] for t in rows_after if rows_after[t] != rows_before[t]}

    deliveries = sum(len(c.topic.consumers) for c in k_cases)
    hostile.FIGURES.update(
        {
            "kafka messages": len(k_cases),
            "kafka deliveries (message x consuming service)": deliveries,
            "http requests": len(h_cases),
            "cases tried": len(k_cases) + len(h_cases),
            "rejected (kafka deliveries + http requests)": sum(outcomes.values()),
            "rejected by kind": dict(sorted(outcomes.items())),
            "accepted (must be 0)": len(accepted) + len(http_accepted),
            "crashes (5xx, dropped connections, dead processes, not ready)": len(http_crashes)
            + sum(not a for a in alive.values())
            + sum(r != 200 for r in ready.values()),
            "lost (neither dead-lettered nor skipped)": len(lost),
            "business rows written": sum(written.values()),
        }
    )
    not_problems = [
        f"{c.service} {c.method} {c.path[:80]} {c.label}: {r}" for c, r in results if str(r).startswith("not a problem")
    ]
    assert not not_problems, not_problems[:20]
    assert not http_crashes, http_crashes[:20]
    assert all(alive.values()) and all(r == 200 for r in ready.values()), (alive, ready)
    assert not accepted, "\n".join(accepted + [str(written)])
    assert not http_accepted, http_accepted[:20]
    assert not lost, lost[:20]
    assert not written, written
    assert sum(outcomes.values()) == deliveries + len(h_cases)
    assert len(k_cases) + len(h_cases) >= 500
    oversized = [status for case, status in results if case.label == "body:oversized"]
    assert oversized and set(oversized) == {413}, "a multi-megabyte body is refused before it is parsed"


async def test_a_streamed_oversized_body_without_content_length_is_refused(services: Stack) -> None:
    async def chunks() -> Any:
        for _ in range(32):
            yield b"A" * 64 * 1024  # 2 MiB in all, chunked: no Content-Length to check up front

    async with api_client(timeout=30) as http:
        response = await http.post(journeys.url(services, "safety", "/v1/side-effect-reports"), content=chunks())
    problem_walk.assert_problem(response, 413)


async def _severe_report(stack: Stack, patient: uuid.UUID) -> None:
    response = await journeys.report(stack, patient, symptoms=["nausea"], grade=3, onset_minutes_after_dose=40)
    assert response.status_code == 201, response.text


async def _paused(stack: Stack, patient: uuid.UUID) -> bool:
    return (await journeys.plan(stack, patient))["status"] == "paused"
