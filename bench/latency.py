"""End-to-end latency with every service its own process: a grade-3 side-effect
report accepted by safety (HTTP 201 back at the client) until the
TreatmentPlanPaused it causes is read off ``dosing.plans`` by this process.

Open-loop: reports are sent at Poisson arrival times whether or not earlier
ones were answered, so a slow system queues work up instead of slowing the
load down (no coordinated omission). One patient per report, each with an
active plan made beforehand, so every report pauses exactly one plan.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from hdrh.histogram import HdrHistogram

from carecoord_devstack.stack import Stack
from carecoord_shared.contracts import topics_consumed_by
from carecoord_shared.contracts.topics import SERVICES

PAUSED_TOPIC = "dosing.plans"
WAIT_S = 60.0


async def _active_plan(http: httpx.AsyncClient, dosing: str, patient: uuid.UUID) -> None:
    created = await http.post(
        f"{dosing}/v1/plans",
        json={"patient_id": str(patient), "clinician_id": "dr-lee", "starting_dose_mg": 100, "max_dose_mg": 300,
              "max_step_mg": 50, "planned_sessions": 6},
    )
    created.raise_for_status()
    activated = await http.post(f"{dosing}/v1/plans/{created.json()['plan_id']}/activate", json={"clinician_id": "dr-lee"})
    activated.raise_for_status()


async def settle(bootstrap: str, timeout_s: float = 120.0) -> None:
    """Wait until every service's group has consumed everything on its topics (the plans just made ripple out)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            behind = 0
            for service in SERVICES:
                committed = await admin.list_consumer_group_offsets(f"carecoord.{service}")
                for topic in topics_consumed_by(service):
                    tps = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
                    for tp, end in (await consumer.end_offsets(tps)).items():
                        behind += max(end - (committed[tp].offset if tp in committed else 0), 0)
            if behind == 0:
                return
            await asyncio.sleep(0.5)
        raise TimeoutError("the services did not catch up with their topics")
    finally:
        await consumer.stop()
        await admin.close()


class PauseWatcher:
    """Notes when each patient's TreatmentPlanPaused arrives."""

    def __init__(self, bootstrap: str) -> None:
        self.seen: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(PAUSED_TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=50)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        while not self._consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)  # fix "latest" now, before any report is sent
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._consumer:
            if json.loads(record.value).get("type") == "TreatmentPlanPaused":
                self.seen.setdefault(record.key.decode(), time.perf_counter())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()


async def run_rate(stack: Stack, watcher: PauseWatcher, rate: float, seconds: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    count = max(int(rate * seconds), 10)
    patients = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(count)]
    dosing, safety = stack.services["dosing"].url, stack.services["safety"].url
    accepted: dict[str, float] = {}
    failed = 0
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        gate = asyncio.Semaphore(4)

        async def prepare(p: uuid.UUID) -> None:
            async with gate:
                await _active_plan(http, dosing, p)

        await asyncio.gather(*(prepare(p) for p in patients))
        await settle(stack.kafka.bootstrap)

        async def report(p: uuid.UUID) -> None:
            nonlocal failed
            r = await http.post(f"{safety}/v1/side-effect-reports", json={"patient_id": str(p), "symptoms": ["chest_pain"], "grade": 3})
            if r.status_code == 201:
                accepted[str(p)] = time.perf_counter()
            else:
                failed += 1

        start = time.perf_counter()
        due = 0.0
        sent = []
        for p in patients:
            due += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, start + due - time.perf_counter()))
            sent.append(asyncio.create_task(report(p)))
        await asyncio.gather(*sent)
    deadline = time.perf_counter() + WAIT_S
    while time.perf_counter() < deadline and any(k not in watcher.seen for k in accepted):
        await asyncio.sleep(0.1)
    hist = HdrHistogram(1, 120_000_000, 3)  # microseconds, 1 µs to 2 min
    for key, at in accepted.items():
        if key in watcher.seen:
            hist.record_value(max(int((watcher.seen[key] - at) * 1e6), 1))
    ms = lambda v: v / 1000  # noqa: E731
    return {
        "rate_per_s": rate,
        "sent": count,
        "accepted": len(accepted),
        "rejected": failed,
        "paused_seen": sum(1 for k in accepted if k in watcher.seen),
        "p50_ms": ms(hist.get_value_at_percentile(50)),
        "p95_ms": ms(hist.get_value_at_percentile(95)),
        "p99_ms": ms(hist.get_value_at_percentile(99)),
        "max_ms": ms(hist.get_max_value()),
    }


async def measure(stack: Stack, rates: list[float], seconds: float, log: Any) -> list[dict[str, Any]]:
    watcher = PauseWatcher(stack.kafka.bootstrap)
    await watcher.start()
    results = []
    try:
        for i, rate in enumerate(rates):
            log(f"latency at {rate:g} reports/s for {seconds:g} s")
            row = await run_rate(stack, watcher, rate, seconds, seed=100 + i)
            log(f"  {row}")
            results.append(row)
    finally:
        await watcher.stop()
    return results
