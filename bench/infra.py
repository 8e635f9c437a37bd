"""The benchmark's own Kafka + PostgreSQL, on free ports, like the test stack."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from carecoord_contracts.topics import Topic
from carecoord_devstack.paths import LOCAL
from carecoord_devstack.scratch import fresh_stack, scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.topic_admin import ensure_topics

STATE_DIR = LOCAL / "bench-stack"
RESULTS_DIR = LOCAL / "bench-results"
IN_TOPIC = Topic(name="bench.in", producer="patient-app", consumers=(), events=("SideEffectReportSubmitted",))
OUT_TOPIC = Topic(name="bench.out", producer="safety", consumers=(), events=("SideEffectReportSubmitted",))
# The floor's two raw hops (bench/floor.py): one partition each, no carecoord code reads them.
FLOOR_TOPICS = (
    Topic(name="bench.floor.1", producer="safety", consumers=(), events=(), partitions=1),
    Topic(name="bench.floor.2", producer="dosing", consumers=(), events=(), partitions=1),
)
BENCH_DB = "bench"
DB_OWNER = "safety"


LOOPS = ("asyncio", "uvloop")  # the first is the services' default (CARECOORD_EVENT_LOOP)


def use_loop(name: str) -> None:
    """Run this process's asyncio.run() calls, and the bench.worker processes it starts, on ``name``'s event
    loop: the services' own (CARECOORD_EVENT_LOOP), so an arm measures what a service would do."""
    os.environ["CARECOORD_EVENT_LOOP"] = name
    if name == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)


def start_stack(log: Callable[[str], None], *, fast_unsafe_db: bool) -> Stack:
    """A fresh stack; a broker left by an interrupted run is stopped first. The services run on this
    process's loop choice (use_loop)."""
    stack = fresh_stack(
        STATE_DIR,
        fast_unsafe_db=fast_unsafe_db,
        service_env={
            "CARECOORD_LOG_LEVEL": "INFO",
            "CARECOORD_TRACES_DIR": str(STATE_DIR / "traces"),
            "CARECOORD_EVENT_LOOP": os.environ.get("CARECOORD_EVENT_LOOP", LOOPS[0]),
        },
    )
    stack.up(log)
    ensure_topics(stack.kafka.bootstrap, (IN_TOPIC, OUT_TOPIC, *FLOOR_TOPICS))
    return stack


async def bench_database(stack: Stack) -> str:
    """A fresh database owned by a service role; returns its SQLAlchemy URL."""
    return await scratch_database(stack, BENCH_DB, DB_OWNER)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The bench database's SQLAlchemy URL as a plain libpq DSN for asyncpg (the floor's commits)."""
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def stop_reader(consumer: AIOKafkaConsumer) -> None:
    """Stop a group-less consumer. aiokafka's stop() cancels and awaits the coordinator's task, which raises
    CancelledError when that task was cancelled before it ever ran (a reader stopped right after its
    assign/seek); that one is not ours and is dropped, a cancellation of this task is passed on."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
