"""The arms: one consume loop each, from the raw client up to the full pipeline hop.

Every arm reads the same pre-written input with a fresh consumer group, from
the earliest offset, and stops after ``n`` messages. The clock starts when the
first batch arrives (group join and connection set-up are not measured) and
stops when the n-th message is done: consumed, or for the echo arms, acknowledged
by the broker on the output topic.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncEngine

from carecoord_contracts import CATALOG, Envelope, upcast
from carecoord_shared.logging import configure_logging
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.tracing import consume_span
from carecoord_shared.persistence import create_engine
from carecoord_shared.telemetry import Telemetry, meter

from .hop import build_hop, reset_tables
from .infra import IN_TOPIC, OUT_TOPIC, STATE_DIR

# Production's broker logger: FastStream's per-message INFO lines are silenced (carecoord_shared.logging).
QUIET = logging.getLogger("carecoord.faststream")
QUIET.setLevel(logging.WARNING)
LOG = structlog.get_logger("carecoord.consumer")
TIMEOUT_S = 300.0
MAX_BATCH = 200  # as the services' consumer_max_batch


class Clock:
    """Counts finished messages; the rate excludes the first batch, which started the clock."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.done_count = 0
        self.first_at: float | None = None
        self.first_batch = 0
        self.last_at: float | None = None
        self.finished = asyncio.Event()

    def start(self, batch: int = 1) -> None:
        if self.first_at is None and batch:
            self.first_at = time.perf_counter()
            self.first_batch = batch

    def tick(self, k: int = 1) -> None:
        if self.finished.is_set():
            return
        self.done_count += k
        if self.done_count >= self.n:
            self.last_at = time.perf_counter()
            self.finished.set()

    def rate(self) -> float:
        """Messages per second after the first batch; infinite when everything came in that batch."""
        assert self.first_at is not None and self.last_at is not None
        counted = self.done_count - self.first_batch
        return counted / (self.last_at - self.first_at) if counted > 0 else math.inf

    def seconds(self) -> float:
        assert self.first_at is not None and self.last_at is not None
        return self.last_at - self.first_at


def group(arm: str) -> str:
    return f"bench-{arm}-{uuid.uuid4().hex[:8]}"


def raw_consumer(bootstrap: str, arm: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        IN_TOPIC.name,
        bootstrap_servers=bootstrap,
        group_id=group(arm),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


# --- A0 / A0c / A0e: the raw aiokafka client ---------------------------------


async def a0_raw(ctx: Context, n: int) -> Clock:
    clock = Clock(n)
    consumer = raw_consumer(ctx.bootstrap, "a0")
    await consumer.start()
    try:
        while not clock.finished.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            clock.start(sum(map(len, batches.values())))
            for records in batches.values():
                clock.tick(len(records))
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return clock


async def a0c_raw_commit_each(ctx: Context, n: int) -> Clock:
    """What FastStream's manual ack does, without FastStream: getone, then commit() per message."""
    clock = Clock(n)
    consumer = raw_consumer(ctx.bootstrap, "a0c")
    await consumer.start()
    try:
        while not clock.finished.is_set():
            await consumer.getone()
            clock.start()
            await consumer.commit()
            clock.tick()
    finally:
        await consumer.stop()
    return clock


async def a0e_raw_echo(ctx: Context, n: int) -> Clock:
    clock = Clock(n)
    consumer = raw_consumer(ctx.bootstrap, "a0e")
    producer = AIOKafkaProducer(bootstrap_servers=ctx.bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    try:
        while not clock.finished.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            clock.start(sum(map(len, batches.values())))
            for records in batches.values():
                pending = [
                    await producer.send(OUT_TOPIC.name, r.value, key=r.key, headers=list(r.headers)) for r in records
                ]
                await asyncio.gather(*pending)
                clock.tick(len(records))
            if batches:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return clock


# --- A1 / A2 / A3: FastStream, as service.py wires it, with more work per message --


def validate(record: ConsumerRecord) -> Envelope:
    envelope = Envelope.model_validate_json(record.value or b"")
    CATALOG[envelope.type].model_validate(upcast(envelope.type, envelope.version, envelope.payload))
    return envelope


def observed(record: ConsumerRecord) -> None:
    """A2's validation inside what EventConsumer wraps around each event: its consume span, log context, a log line, metrics."""
    started = time.perf_counter()
    span = consume_span(record, "bench")
    with trace.use_span(span, end_on_exit=True):
        envelope = validate(record)
        span.set_attributes({"carecoord.event.type": envelope.type, "messaging.message.id": str(envelope.event_id)})
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.event_id), correlation_id=str(envelope.correlation_id), event_type=envelope.type
        ):
            LOG.info("event.processed", event_type=envelope.type, event_id=str(envelope.event_id))
        span.set_attribute("carecoord.outcome", "processed")
    labels = {"event_type": envelope.type, "outcome": "processed"}
    CONSUMED.add(1, labels)
    DURATION.record(time.perf_counter() - started, labels)


# Proxies until the first Telemetry sets the meter provider, then real instruments (as in EventConsumer).
CONSUMED = meter().create_counter("carecoord.events.consumed", description="Events consumed, by type and outcome")
DURATION = meter().create_histogram("carecoord.handler.duration", unit="s", description="Time to handle one event")


def broker(ctx: Context) -> KafkaBroker:
    return KafkaBroker(
        ctx.bootstrap,
        enable_idempotence=False,  # as the services' broker (carecoord_shared.service says why)
        acks="all",
        logger=QUIET,
    )


async def faststream_arm(ctx: Context, n: int, work: Callable[[ConsumerRecord], Any]) -> Clock:
    """FastStream's batch subscriber acknowledged once per batch (what EventConsumer ran on until it drove aiokafka itself)."""
    clock = Clock(n)
    kafka = broker(ctx)
    subscriber = kafka.subscriber(
        IN_TOPIC.name,
        group_id=group("fs"),
        batch=True,
        max_records=MAX_BATCH,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        decoder=lambda m: m.body,
    )

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        clock.start(len(message.raw_message))
        for record in message.raw_message:
            work(record)
        await message.ack()
        clock.tick(len(message.raw_message))

    await kafka.start()
    try:
        await asyncio.wait_for(clock.finished.wait(), TIMEOUT_S)
    finally:
        await kafka.stop()
    return clock


async def a1_faststream(ctx: Context, n: int) -> Clock:
    return await faststream_arm(ctx, n, lambda _r: None)


async def a2_validation(ctx: Context, n: int) -> Clock:
    return await faststream_arm(ctx, n, validate)


async def a3_observability(ctx: Context, n: int) -> Clock:
    ctx.telemetry()
    return await faststream_arm(ctx, n, observed)


# --- A4: the full hop, EventConsumer + UnitOfWork + OutboxRelay (bench/hop.py) ---


class TimedConsumer(EventConsumer):
    clock: Clock

    async def handle_batch(self, records: Any) -> Any:
        self.clock.start(len(records))
        return await super().handle_batch(records)


async def a4_full_hop(ctx: Context, n: int) -> Clock:
    clock = Clock(n)
    ctx.telemetry()
    engine = await ctx.engine()
    await reset_tables(engine)
    hop = build_hop(
        broker(ctx),
        engine,
        (IN_TOPIC,),
        group("a4"),
        bootstrap=ctx.bootstrap,
        on_published=clock.tick,
        consumer_cls=TimedConsumer,
    )
    hop.consumer.clock = clock  # type: ignore[attr-defined]
    await hop.start()
    try:
        await asyncio.wait_for(clock.finished.wait(), TIMEOUT_S)
    finally:
        await hop.stop()
    return clock


# --- the shared context ------------------------------------------------------


@dataclass
class Context:
    bootstrap: str
    database_url: str
    _telemetry: Telemetry | None = None
    _engine: AsyncEngine | None = None

    def telemetry(self) -> Telemetry:
        """Process-wide, like a service's: structlog to /dev/null (its formatting is measured, a terminal is not), spans to JSON lines."""
        if self._telemetry is None:
            self._telemetry = Telemetry("bench", traces_dir=str(STATE_DIR / "traces"))
            # Our lines and the standard library's (two routes since #22), both to /dev/null.
            configure_logging("bench", "INFO", "json", stream=open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
        return self._telemetry

    async def engine(self) -> AsyncEngine:
        """The bench database, its queries traced like a service's."""
        if self._engine is None:
            from carecoord_shared.sql_tracing import trace_sql

            self._engine = create_engine(self.database_url)
            trace_sql(self._engine.sync_engine, self.telemetry().tracer_provider)
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        if self._telemetry is not None:
            self._telemetry.shutdown()


Arm = Callable[[Context, int], Awaitable[Clock]]


@dataclass(frozen=True)
class ArmSpec:
    key: str
    title: str
    run: Arm
    baseline: str | None  # the arm its ratio is taken to
    below: str | None  # the arm one layer down, for the per-layer cost


ARMS: tuple[ArmSpec, ...] = (
    ArmSpec("A0", "raw aiokafka: getmany, commit per batch", a0_raw, None, None),
    ArmSpec("A0c", "raw aiokafka: getone, commit per message", a0c_raw_commit_each, "A0", "A0"),
    ArmSpec("A0e", "raw consume + produce echo, acks=all", a0e_raw_echo, "A0", "A0"),
    ArmSpec("A1", "FastStream no-op batch subscriber, ack per batch", a1_faststream, "A0", "A0"),
    ArmSpec("A2", "A1 + envelope and payload validation", a2_validation, "A0", "A1"),
    ArmSpec("A3", "A2 + structlog + OpenTelemetry", a3_observability, "A0", "A2"),
    ArmSpec("A4", "EventConsumer: inbox+state+outbox txn per batch, relay", a4_full_hop, "A0e", "A3"),
)
