"""CPU per message of the validation and observability layers, in-process, with no I/O.

The throughput arms A1–A3 include the broker's fetches and one offset commit
per batch, which vary between runs; timing the layers' own code on the same
records resolves what each costs.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRecord

from .arms import Context, observed, validate
from .infra import IN_TOPIC
from .workload import PATIENTS, make_envelope

LAYERS: dict[str, Callable[[ConsumerRecord], Any]] = {
    "validation (A2's work)": validate,
    "validation + consume span + structlog + metrics (A3's work)": observed,
}


def records(count: int, seed: int = 7) -> list[ConsumerRecord]:
    rng = random.Random(seed)
    patients = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(PATIENTS)]
    out = []
    for offset in range(count):
        env = make_envelope(rng, patients)
        value = env.model_dump_json().encode()
        out.append(ConsumerRecord(IN_TOPIC.name, 0, offset, 0, 0, env.key, value, None, len(env.key), len(value), ()))
    return out


def measure(ctx: Context, reps: int, count: int = 2000) -> dict[str, dict[str, float]]:
    ctx.telemetry()  # the same logging and tracing set-up as A3
    batch = records(count)
    out = {}
    for name, work in LAYERS.items():
        for r in batch[:200]:  # warm-up
            work(r)
        samples = []
        for _ in range(reps):
            started = time.perf_counter()
            for r in batch:
                work(r)
            samples.append((time.perf_counter() - started) / count * 1e6)
        out[name] = {"median_us": statistics.median(samples), "min_us": min(samples), "max_us": max(samples)}
    return out
