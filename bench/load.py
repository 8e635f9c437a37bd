"""Open-loop load: Poisson arrival times, and how long a latency run will take.

The schedule and the estimate are pure functions, unit-tested; ``open_loop``
sends on that schedule.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

LEVELS = (0.10, 0.50, 0.80)  # fractions of the measured (sustained) maximum


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


def third_medians(latencies_s: Sequence[float]) -> tuple[float, float]:
    """The median of the first and of the last third of a step's latencies (in the order they were due)."""
    if len(latencies_s) < 3:
        raise ValueError("a step needs at least three latencies")
    third = len(latencies_s) // 3
    return statistics.median(latencies_s[:third]), statistics.median(latencies_s[-third:])


def fell_behind(
    latencies_s: Sequence[float],
    drain_s: float,
    *,
    factor: float = 2.0,
    slack_s: float = 0.1,
    drain_limit_s: float = 1.0,
) -> str | None:
    """Why a step of steady load fell behind, or None when the stack kept up with it.

    ``latencies_s`` in the order the reports were due; ``drain_s``: from the last
    report's due time to the last pause seen. A stack that keeps up with an
    open-loop rate answers the step's last reports like its first; one that does
    not queues each report behind a backlog that grows for as long as the step
    lasts, and is still working it off when the sending ends. Fell behind: the
    last third's median above ``factor`` × the first third's plus ``slack_s`` (a
    Poisson burst raises a few latencies, not a third's median), or a drain
    longer than ``drain_limit_s``.
    """
    first, last = third_medians(latencies_s)
    if last > factor * first + slack_s:
        return f"latency rose: median {first * 1000:.0f} → {last * 1000:.0f} ms"
    if drain_s > drain_limit_s:
        return f"drain {drain_s:.2f} s"
    return None


@dataclass
class SustainedSearch:
    """The open-loop rates to try for the sustained maximum, one step at a time.

    Up by ``growth`` from ``start`` while steps keep up (to ``ceiling``), or down
    from it until one does (to ``least``); once one rate kept up and one fell
    behind, ``refine`` steps at their geometric mean. The answer is ``kept``:
    the highest rate a step kept up with.
    """

    start: float
    ceiling: float
    growth: float = 1.25
    refine: int = 2
    least: float = 0.5
    kept: float | None = None
    fell: float | None = None
    refined: int = 0

    def next_rate(self) -> float | None:
        if self.kept is None and self.fell is None:
            return self.start
        if self.fell is None:
            assert self.kept is not None
            up = self.kept * self.growth
            return up if up <= self.ceiling else None
        if self.kept is None:
            down = self.fell / self.growth
            return down if down >= self.least else None
        return math.sqrt(self.kept * self.fell) if self.refined < self.refine else None

    def record(self, rate: float, kept_up: bool) -> None:
        if self.kept is not None and self.fell is not None:
            self.refined += 1
        if kept_up:
            self.kept = max(self.kept or 0.0, rate)
        else:
            self.fell = rate if self.fell is None else min(self.fell, rate)


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
