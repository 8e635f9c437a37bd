"""Deliveries a service decodes only to skip: how many a report causes, and what decoding them costs.

A service's consumer reads every record on the topics it subscribes to and,
today, decodes the whole envelope (``Envelope.model_validate_json``) before
it looks up a handler for its type (``EventConsumer._open``); an event type
it has no handler for is then skipped. The type is also in the record's
``event-type`` header. This measures, over the records the single-report
part put on the topics (what one report causes, ``samples`` times):

- per service, its deliveries per report, and how many of them are of a type
  it does not handle (from the headers; the handled types are what each
  service's ``build`` registers, read with a recorder in place of the
  consumer);
- in this process, the CPU of decoding each of those skipped records as
  ``_open`` does, against reading the type from its headers.

Measurement only: nothing in the services changes.
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from carecoord_contracts import Envelope, topics_consumed_by
from carecoord_contracts.topics import BUSINESS_TOPICS, SERVICES

from .infra import stop_reader

TYPE_HEADER = "event-type"
REPS = 7
READ_TIMEOUT_S = 60.0


class HandledTypes:
    """Stands in for an EventConsumer while a service registers its handlers; keeps only the event types."""

    def __init__(self) -> None:
        self.types: set[str] = set()

    def on(self, event_cls: Any) -> Callable[[Any], Any]:
        self.types.add(event_cls.event_type)
        return lambda fn: fn


def handled_types(service: str) -> frozenset[str]:
    """The event types ``service``'s ``build`` registers handlers for, with its settings' defaults."""
    app = importlib.import_module(f"carecoord_{service}.app")
    settings_cls = getattr(importlib.import_module(f"carecoord_{service}.settings"), f"{service.title()}Settings")
    definition = app.build(settings_cls())
    recorder = HandledTypes()
    definition.register_handlers(recorder)
    return frozenset(recorder.types)


def unhandled_on_topics(service: str, handled: frozenset[str]) -> dict[str, list[str]]:
    """Per topic ``service`` consumes: the event types the registry says it carries that the service does not handle."""
    return {t.name: sorted(set(t.events) - handled) for t in topics_consumed_by(service) if set(t.events) - handled}


def event_type(headers: Iterable[tuple[str, bytes]]) -> str | None:
    return next((v.decode() for k, v in headers if k == TYPE_HEADER), None)


def split_deliveries(
    records: dict[str, list[tuple[list[tuple[str, bytes]], bytes]]], handled: dict[str, frozenset[str]]
) -> dict[str, dict[str, Any]]:
    """Per service: the records on its topics, how many it handles, and the values of those it skips, by type."""
    out: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        topics = [t.name for t in topics_consumed_by(service)]
        mine = [r for topic in topics for r in records.get(topic, [])]
        skipped: dict[str, list[tuple[list[tuple[str, bytes]], bytes]]] = {}
        for headers, value in mine:
            kind = event_type(headers) or "?"
            if kind not in handled[service]:
                skipped.setdefault(kind, []).append((headers, value))
        out[service] = {
            "deliveries": len(mine),
            "skipped": sum(map(len, skipped.values())),
            "skipped_by_type": {k: len(v) for k, v in sorted(skipped.items())},
            "_records": [r for rs in skipped.values() for r in rs],
        }
    return out


def us_per_record(fn: Callable[[Any], Any], values: list[Any]) -> float:
    """Median over REPS passes of fn over every value, in µs per value."""
    passes = []
    for _ in range(REPS):
        t0 = time.perf_counter()
        for v in values:
            fn(v)
        passes.append((time.perf_counter() - t0) / len(values) * 1e6)
    return statistics.median(passes)


async def read_span(bootstrap: str, start: dict[str, list[int]], end: dict[str, list[int]]) -> dict[str, list[Any]]:
    """The (headers, value) of every record between ``start`` and ``end`` offsets, per topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: dict[str, list[Any]] = {}
    deadline = time.perf_counter() + READ_TIMEOUT_S
    try:
        for topic, firsts in start.items():
            for partition, first in enumerate(firsts):
                last = end[topic][partition]
                if last <= first:
                    continue
                tp = TopicPartition(topic, partition)
                consumer.assign([tp])
                consumer.seek(tp, first)
                while (await consumer.position(tp)) < last and time.perf_counter() < deadline:
                    for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                        out.setdefault(topic, []).extend(
                            (list(r.headers), r.value or b"") for r in records if r.offset < last
                        )
    finally:
        await stop_reader(consumer)
    return out


async def end_offsets(bootstrap: str) -> dict[str, list[int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t.name, p) for t in BUSINESS_TOPICS for p in range(t.partitions)]
        ends = await consumer.end_offsets(tps)
        return {t.name: [ends[TopicPartition(t.name, p)] for p in range(t.partitions)] for t in BUSINESS_TOPICS}
    finally:
        await consumer.stop()


async def measure(bootstrap: str, start: dict[str, list[int]], end: dict[str, list[int]], reports: int) -> dict:
    handled = {s: handled_types(s) for s in SERVICES}
    split = split_deliveries(await read_span(bootstrap, start, end), handled)
    out: dict[str, Any] = {"reports": reports, "services": {}}
    for service, row in split.items():
        skipped = row.pop("_records")
        row["unhandled_on_topics"] = unhandled_on_topics(service, handled[service])
        row["deliveries_per_report"] = row["deliveries"] / reports if reports else None
        row["skipped_per_report"] = row["skipped"] / reports if reports else None
        if skipped:
            row["decode_us"] = us_per_record(Envelope.model_validate_json, [v for _h, v in skipped])
            row["header_us"] = us_per_record(event_type, [h for h, _v in skipped])
            row["decode_us_per_report"] = row["decode_us"] * (row["skipped_per_report"] or 0)
        out["services"][service] = row
    return out
