"""Open-loop load: Poisson arrival times, and how long a latency run will take.

The schedule and the estimate are pure functions, unit-tested; ``open_loop``
sends on that schedule.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

LEVELS = (0.10, 0.50, 0.80)  # fractions of the measured maximum


def arrival_offsets(rate_per_s: float, count: int, rng: random.Random) -> list[float]:
    """Seconds from the start at which each of ``count`` requests is due.

    A Poisson process: exponential gaps with mean 1/rate, independent of how
    fast the system answers (open loop, no coordinated omission).
    """
    if rate_per_s <= 0:
        raise ValueError("rate must be positive")
    offsets, t = [], 0.0
    for _ in range(count):
        t += rng.expovariate(rate_per_s)
        offsets.append(t)
    return offsets


@dataclass(frozen=True)
class LevelPlan:
    level: float  # fraction of the maximum
    rate_per_s: float
    samples: int
    prepare_s: float  # making one patient with an active plan per sample, and letting it settle
    send_s: float  # the Poisson sending itself
    drain_s: float  # waiting for the last answers

    @property
    def total_s(self) -> float:
        return self.prepare_s + self.send_s + self.drain_s


@dataclass(frozen=True)
class Sizing:
    """Samples per level sized by sending time: ``rate × send_s``, at least ``least`` and at most ``most``.

    A fixed count makes the slowest level the longest by far (10 000 samples at
    10 % of 35 reports/s is 48 minutes of sending, and as many patients to
    prepare); a fixed sending time gives every level about the same share of
    the run, and the floor keeps enough samples for a p99 (10 beyond it at 1 000).
    """

    send_s: float
    least: int
    most: int

    def samples(self, rate_per_s: float) -> int:
        return max(self.least, min(self.most, round(rate_per_s * self.send_s)))


def plan_levels(
    max_rate_per_s: float,
    samples: int | Sizing,
    prepare_s_per_sample: float,
    drain_s: float,
    levels: tuple[float, ...] = LEVELS,
) -> list[LevelPlan]:
    """The rate, sample count and expected duration of every load level (``samples``: a count, or a sizing)."""
    if max_rate_per_s <= 0:
        raise ValueError("the measured maximum must be positive")
    out = []
    for level in levels:
        rate = max_rate_per_s * level
        n = samples.samples(rate) if isinstance(samples, Sizing) else samples
        out.append(LevelPlan(level, rate, n, n * prepare_s_per_sample, n / rate, drain_s))
    return out


def human_duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


async def open_loop(
    offsets: list[float], send: Callable[[int], Awaitable[None]], on_sent: Callable[[int], None] = lambda _i: None
) -> float:
    """Start ``send(i)`` at ``offsets[i]`` seconds, without waiting for earlier sends; returns when all are answered.

    Returns how far behind schedule the last start was, in seconds (the load
    generator itself falling behind would make the load lighter than asked).
    """
    start = time.perf_counter()
    tasks, lag = [], 0.0
    for i, due in enumerate(offsets):
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = max(lag, -delay)
        tasks.append(asyncio.create_task(send(i)))
        on_sent(i)
    await asyncio.gather(*tasks)
    return lag
