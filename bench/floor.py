"""The floor: what no implementation of the headline flow can beat on this machine.

The headline flow (a grade-3 report → ``TreatmentPlanPaused``) is, at its
least, safety's commit, one Kafka hop to dosing, dosing's commit and one
Kafka hop back out. The floor does exactly that with no carecoord code: one
sample is, back to back,

1. a single-row PostgreSQL commit (asyncpg, one ``INSERT`` in autocommit: one
   round trip and one WAL flush, the stack's durable settings),
2. a raw Kafka hop: aiokafka produce with ``acks=all`` of a ~1 KB value,
   done when the broker acknowledged it and a consumer assigned to the
   partition has read it,
3. a second single-row commit on a second connection,
4. a second hop, on a second topic with its own producer and consumer,

timed as a whole and part by part into HDR histograms, on the same stack
and in the same run as the headline (the services started and idle).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .infra import FLOOR_TOPICS, asyncpg_dsn
from .latency import histogram, percentiles_ms

VALUE = b"x" * 1024  # about one envelope
WARMUP = 50
PARTS = ("commit_1", "hop_1", "commit_2", "hop_2")


class Hop:
    """One producer and one consumer assigned to partition 0 of one topic."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.tp = TopicPartition(topic, 0)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def start(self) -> None:
        await self.producer.start()
        await self.consumer.start()
        self.consumer.assign([self.tp])
        await self.consumer.seek_to_end(self.tp)
        await self.consumer.position(self.tp)  # fix the end now, before the first send

    async def __call__(self) -> None:
        ack = await self.producer.send(self.tp.topic, VALUE, partition=0)
        await self.consumer.getone(self.tp)
        await ack

    async def stop(self) -> None:
        await self.producer.stop()
        await self.consumer.stop()


def commit_on(conn: asyncpg.Connection) -> Callable[[], Any]:
    async def commit() -> None:
        await conn.execute("INSERT INTO bench_floor (payload) VALUES ($1)", "floor")

    return commit


async def measure(bootstrap: str, database_url: str, samples: int, on_sample: Callable[[], None]) -> dict[str, Any]:
    """``samples`` floor samples after a warm-up; p50…max of the whole and of each part, in ms."""
    dsn = asyncpg_dsn(database_url)
    conns = [await asyncpg.connect(dsn) for _ in range(2)]
    hops = [Hop(bootstrap, t.name) for t in FLOOR_TOPICS]
    try:
        await conns[0].execute("CREATE TABLE IF NOT EXISTS bench_floor (id bigserial PRIMARY KEY, payload text)")
        for hop in hops:
            await hop.start()
        steps = dict(zip(PARTS, (commit_on(conns[0]), hops[0], commit_on(conns[1]), hops[1]), strict=True))
        total, parts = histogram(), {name: histogram() for name in PARTS}
        for i in range(WARMUP + samples):
            start = last = time.perf_counter()
            took: dict[str, float] = {}
            for name, step in steps.items():
                await step()
                now = time.perf_counter()
                took[name], last = now - last, now
            if i >= WARMUP:
                total.record_value(max(int((last - start) * 1e6), 1))
                for name, seconds in took.items():
                    parts[name].record_value(max(int(seconds * 1e6), 1))
                on_sample()
        return {
            "samples": samples,
            "what": "2 × (single-row PostgreSQL commit + raw Kafka hop, acks=all), back to back",
            **percentiles_ms(total),
            "parts": {name: percentiles_ms(h) for name, h in parts.items()},
        }
    finally:
        for hop in hops:
            await hop.stop()
        for conn in conns:
            await conn.close()


def run(bootstrap: str, database_url: str, samples: int, on_sample: Callable[[], None] = lambda: None) -> dict:
    return asyncio.run(measure(bootstrap, database_url, samples, on_sample))
