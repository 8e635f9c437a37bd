"""Notes when keyed events arrive on a topic, read by this process (the end of a latency measurement)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord


def paused_patient(record: ConsumerRecord) -> str | None:
    """The patient whose plan a dosing.plans record paused, else None."""
    return record.key.decode() if json.loads(record.value).get("type") == "TreatmentPlanPaused" else None


def reported_report(record: ConsumerRecord) -> str | None:
    """The report id a SideEffectReported record carries, else None."""
    body = json.loads(record.value)
    return str(body["payload"]["report_id"]) if body.get("type") == "SideEffectReported" else None


class Watcher:
    """Reads ``topic`` from its end at start(); ``seen[key]`` is when the first record of that key arrived."""

    def __init__(self, bootstrap: str, topic: str, key_of: Callable[[ConsumerRecord], str | None]) -> None:
        self.seen: dict[str, float] = {}
        self._key_of = key_of
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=50
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        while not self._consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)  # fix "latest" now, before anything is sent
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for record in self._consumer:
            key = self._key_of(record)
            if key is not None:
                self.seen.setdefault(key, time.perf_counter())

    async def wait_for(self, keys: Any, timeout_s: float) -> bool:
        """Until every key was seen or the timeout passed; True when all were."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if all(k in self.seen for k in keys):
                return True
            await asyncio.sleep(0.1)
        return all(k in self.seen for k in keys)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()
