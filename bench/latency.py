"""End-to-end latency with every service its own process: a grade-3 side-effect
report accepted by safety (HTTP 201 back at the client) until the
TreatmentPlanPaused it causes is read off ``dosing.plans`` by this process.

First a burst of reports sent at once, completed reports per second. It
overstates what the stack sustains: 200 reports at once are handled in large
batches, a steady rate in small ones, which cost more CPU per report. So the
maximum is the sustained one: the highest open-loop rate a step of steady
load keeps up with (its last reports answered like its first, ``load.
fell_behind``), found from half the burst's rate up and refined between the
last rate kept up with and the first that fell behind. Then open-loop Poisson
load at fractions of that maximum (10 %, 50 %, 80 %):
reports are sent at their arrival times whether or not earlier ones were
answered, so a slow system queues work up instead of slowing the load down (no
coordinated omission). One patient per report, each with an active plan made
beforehand, so every report pauses exactly one plan. Latencies go into an HDR
histogram; the services' resident memory is sampled while the load runs.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from hdrh.histogram import HdrHistogram
from rich.progress import Progress

from carecoord_contracts import topics_consumed_by
from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role, mint_token

from . import skipped
from .cpu_share import CpuWindow
from .http import LoadClient, TransportError
from .infra import stop_reader
from .load import (
    LevelPlan,
    Sizing,
    SustainedSearch,
    arrival_offsets,
    fell_behind,
    human_duration,
    open_loop,
    plan_levels,
    third_medians,
)
from .memory import PeakRss
from .watch import Watcher, paused_patient

PAUSED_TOPIC = "dosing.plans"
DRAIN_S = 60.0
SINGLE_TIMEOUT_S = 10.0  # one report on an idle stack that takes longer counts as not seen
IDLE_GAP_S = 0.1  # after a report's pause is seen, before the next is sent: the stack idle again
PREPARE_CONCURRENCY = 8
SAMPLE_EVERY_S = 0.5
SUSTAIN_STEP_S = 10.0  # sending time of one step of the sustained-maximum search
SUSTAIN_LEAST_SAMPLES = 60  # a step's reports at the least: a third of them is a median


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 120_000_000, 3)  # microseconds, 1 µs to 2 min, 3 significant digits


def percentiles_ms(hist: HdrHistogram, prefix: str = "") -> dict[str, float]:
    ms = lambda v: v / 1000  # noqa: E731
    return {
        f"{prefix}p50_ms": ms(hist.get_value_at_percentile(50)),
        f"{prefix}p95_ms": ms(hist.get_value_at_percentile(95)),
        f"{prefix}p99_ms": ms(hist.get_value_at_percentile(99)),
        f"{prefix}p99_9_ms": ms(hist.get_value_at_percentile(99.9)),
        f"{prefix}max_ms": ms(hist.get_max_value()),
    }


async def _active_plan(http: httpx.AsyncClient, dosing: str, patient: uuid.UUID) -> None:
    created = await http.post(
        f"{dosing}/v1/plans",
        json={
            "patient_id": str(patient),
            "clinician_id": "dr-lee",
            "starting_dose_mg": 100,
            "max_dose_mg": 300,
            "max_step_mg": 50,
            "planned_sessions": 6,
            "indication": "depression",
            "diagnosis_codes": ["F33.1"],
        },
    )
    created.raise_for_status()
    activated = await http.post(
        f"{dosing}/v1/plans/{created.json()['plan_id']}/activate", json={"clinician_id": "dr-lee"}
    )
    activated.raise_for_status()


async def settle(bootstrap: str, timeout_s: float = 600.0) -> None:
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
        await stop_reader(consumer)
        await admin.close()


async def start_groups_at_end(bootstrap: str) -> int:
    """Commit every service group's offsets at the end of its topics; returns how many records that skips.

    The throughput and scaling parts publish SideEffectReported to the real
    safety.reports topic; without this the services would first work through
    those thousands of bench events, and "idle" and the first level would not be.
    """
    skipped = 0
    for service in SERVICES:
        tps = [TopicPartition(t.name, p) for t in topics_consumed_by(service) for p in range(t.partitions)]
        if not tps:
            continue
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=f"carecoord.{service}", enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            committed = {tp: (await consumer.committed(tp)) or 0 for tp in tps}
            skipped += sum(max(end - committed[tp], 0) for tp, end in ends.items())
            await consumer.commit({tp: end for tp, end in ends.items()})
        finally:
            await consumer.stop()
    return skipped


class Run:
    """The services, the watcher and the HTTP clients, shared by the maximum and every level.

    ``http`` (httpx) prepares patients, outside every measured window; ``load`` sends the reports
    (bench/http.py: a fraction of httpx's CPU, which shares the cores with the stack)."""

    def __init__(
        self, stack: Stack, watcher: Watcher, http: httpx.AsyncClient, load: LoadClient, progress: Progress
    ) -> None:
        self.stack = stack
        self.watcher = watcher
        self.http = http
        self.load = load
        self.progress = progress
        self.dosing = stack.services["dosing"].url
        self.safety = stack.services["safety"].url
        self.pids = {name: s.proc.pid for name, s in stack.services.items() if s.proc is not None}

    async def prepare(self, count: int, rng: random.Random, label: str) -> list[uuid.UUID]:
        """``count`` patients with an active plan each, everything caught up; the time goes to the progress bar."""
        patients = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(count)]
        task = self.progress.add_task(f"{label}: active plans", total=count)
        gate = asyncio.Semaphore(PREPARE_CONCURRENCY)

        async def one(p: uuid.UUID) -> None:
            async with gate:
                await _active_plan(self.http, self.dosing, p)
            self.progress.advance(task)

        await asyncio.gather(*(one(p) for p in patients))
        self.progress.update(task, description=f"{label}: active plans (waiting for every consumer group to catch up)")
        await settle(self.stack.kafka.bootstrap)
        self.progress.remove_task(task)
        return patients

    async def send(
        self, patients: list[uuid.UUID], offsets: list[float], label: str, on_tick: Callable[[], None]
    ) -> dict[str, Any]:
        """Reports at the given offsets; returns when every answer and pause is in (or the drain timeout passed)."""
        accepted: dict[str, float] = {}
        scheduled: dict[str, float] = {}
        rejected = 0
        failures: dict[str, int] = {}
        start = time.perf_counter()
        sent_task = self.progress.add_task(f"{label}: sent", total=len(patients))
        seen_task = self.progress.add_task(f"{label}: paused seen", total=len(patients))

        async def report(i: int) -> None:
            nonlocal rejected
            p = str(patients[i])
            scheduled[p] = start + offsets[i]
            try:
                r = await self.load.post(
                    "/v1/side-effect-reports", json={"patient_id": p, "symptoms": ["chest_pain"], "grade": 3}
                )
            except TransportError as exc:
                # One dropped connection must not end an hour's run: the report counts as
                # not accepted (so it has no latency sample) and the table says how many.
                failures[str(exc)] = failures.get(str(exc), 0) + 1  # what broke: ReadError, TimeoutError...
                rejected += 1
                return
            if r.status_code == 201:
                accepted[p] = time.perf_counter()
            else:
                rejected += 1

        async def ticker() -> None:
            while True:
                self.progress.update(seen_task, completed=sum(1 for k in scheduled if k in self.watcher.seen))
                on_tick()
                await asyncio.sleep(SAMPLE_EVERY_S)

        tick = asyncio.create_task(ticker())
        try:
            lag = await open_loop(offsets, report, lambda _i: self.progress.advance(sent_task))
            await self.watcher.wait_for(accepted, DRAIN_S)
        finally:
            tick.cancel()
            self.progress.remove_task(sent_task)
            self.progress.remove_task(seen_task)
        return {
            "accepted": accepted,
            "scheduled": scheduled,
            "rejected": rejected,
            "transport_errors": failures,
            "start": start,
            "sender_lag_s": lag,
        }


async def measure_burst(run: Run, burst: int, rng: random.Random) -> dict[str, Any]:
    """All ``burst`` reports at once: completed report → paused flows per second, and what preparing one patient costs."""
    t0 = time.perf_counter()
    patients = await run.prepare(burst, rng, "burst")
    prepare_s = time.perf_counter() - t0
    cpu = CpuWindow(run.pids, run.stack.state_dir)
    cpu.start()
    out = await run.send(patients, [0.0] * burst, "burst", lambda: None)
    done = [run.watcher.seen[k] for k in out["accepted"] if k in run.watcher.seen]
    if not done:
        raise RuntimeError("no TreatmentPlanPaused arrived in the burst")
    cpu_ms = cpu.stop(per=len(done))
    elapsed = max(done) - out["start"]
    return {
        "burst": burst,
        "completed": len(done),
        "seconds": elapsed,
        "max_per_s": len(done) / elapsed,
        "prepare_s_per_patient": prepare_s / burst,
        "cpu_ms_per_report": cpu_ms,
    }


async def sustain_step(run: Run, rate_per_s: float, step_s: float, rng: random.Random) -> dict[str, Any]:
    """One step of steady open-loop load: did the stack keep up (every report paused, the backlog not growing)?"""
    count = max(SUSTAIN_LEAST_SAMPLES, round(rate_per_s * step_s))
    label = f"sustained maximum: {rate_per_s:.1f}/s"
    patients = await run.prepare(count, rng, label)
    cpu = CpuWindow(run.pids, run.stack.state_dir)
    cpu.start()
    out = await run.send(patients, arrival_offsets(rate_per_s, count, rng), label, lambda: None)
    seen = run.watcher.seen
    done = [k for k in out["accepted"] if k in seen]
    cpu_ms = cpu.stop(per=len(done))
    # In the order the reports were due: a backlog shows as latency rising along the step.
    due = sorted(done, key=lambda k: out["scheduled"][k])
    latencies = [seen[k] - out["accepted"][k] for k in due]
    last_seen = max((seen[k] for k in done), default=None)
    drain = last_seen - max(out["scheduled"].values()) if last_seen is not None else float("inf")
    if len(done) < count:
        behind: str | None = f"{count - len(done)} of {count} not paused"
    else:
        behind = fell_behind(latencies, drain)
    hist = histogram()
    for value in latencies:
        hist.record_value(max(int(value * 1e6), 1))
    first, last = (1000 * m for m in third_medians(latencies)) if len(latencies) >= 3 else (None, None)
    return {
        "rate_per_s": rate_per_s,
        "sent": count,
        "accepted": len(out["accepted"]),
        "paused_seen": len(done),
        "kept_up": behind is None,
        "fell_behind": behind,
        "drain_s": drain,
        "first_third_p50_ms": first,
        "last_third_p50_ms": last,
        "seconds": last_seen - out["start"] if last_seen is not None else None,
        "cpu_ms_per_report": cpu_ms,
        **percentiles_ms(hist),
    }


async def measure_sustained(
    run: Run, burst_per_s: float, step_s: float, refine: int, rng: random.Random, log: Callable[[str], None]
) -> dict[str, Any]:
    """The highest steady rate kept up with (load.SustainedSearch from half the burst's rate): the maximum."""
    search = SustainedSearch(start=burst_per_s / 2, ceiling=burst_per_s * 2, refine=refine)
    steps = []
    while (rate := search.next_rate()) is not None:
        step = await sustain_step(run, rate, step_s, rng)
        search.record(rate, step["kept_up"])
        steps.append(step)
        log(
            f"  {rate:.1f} reports/s: {'kept up' if step['kept_up'] else 'fell behind (' + step['fell_behind'] + ')'} "
            f"({step['paused_seen']}/{step['sent']} paused; median latency {step['first_third_p50_ms'] or 0:.0f} ms "
            f"in the first third, {step['last_third_p50_ms'] or 0:.0f} ms in the last)"
        )
    if search.kept is None:
        raise RuntimeError(f"no steady rate down to {search.least}/s was kept up with")
    best = next(s for s in steps if s["kept_up"] and s["rate_per_s"] == search.kept)
    return {
        "max_per_s": search.kept,
        "fell_behind_at_per_s": search.fell,
        "completed": best["paused_seen"],
        "seconds": best["seconds"],
        "cpu_ms_per_report": best["cpu_ms_per_report"],
        "step_s": step_s,
        "steps": steps,
    }


async def measure_single(run: Run, samples: int, rng: random.Random) -> dict[str, Any]:
    """One report at a time on an idle stack: each sent after the previous one's pause was seen (and a short gap)."""
    # What preparing these patients and then their reports cause, for bench/skipped.py.
    before_prepare = await skipped.end_offsets(run.stack.kafka.bootstrap)
    patients = await run.prepare(samples, rng, "single report, idle")
    before = await skipped.end_offsets(run.stack.kafka.bootstrap)
    hist = histogram()
    accepted = rejected = 0
    task = run.progress.add_task("single report, idle: one at a time", total=samples)
    window_start = time.time_ns()  # the services' spans carry epoch times (bench/spans.py)
    try:
        for patient in patients:
            key = str(patient)
            try:
                r = await run.load.post(
                    "/v1/side-effect-reports", json={"patient_id": key, "symptoms": ["chest_pain"], "grade": 3}
                )
            except TransportError:
                r = None
            if r is not None and r.status_code == 201:
                at = time.perf_counter()
                accepted += 1
                if await run.watcher.wait_for((key,), SINGLE_TIMEOUT_S):
                    hist.record_value(max(int((run.watcher.seen[key] - at) * 1e6), 1))
            else:
                rejected += 1
            run.progress.advance(task)
            await asyncio.sleep(IDLE_GAP_S)
    finally:
        run.progress.remove_task(task)
    window = (window_start, time.time_ns())
    await settle(run.stack.kafka.bootstrap)  # every service has consumed what they caused
    after = await skipped.end_offsets(run.stack.kafka.bootstrap)
    return {
        "offsets": (before_prepare, before, after),
        "window_ns": window,
        "sent": samples,
        "accepted": accepted,
        "rejected": rejected,
        "paused_seen": hist.get_total_count(),
        **percentiles_ms(hist),
    }


async def run_level(run: Run, plan: LevelPlan, rng: random.Random, pids: dict[str, int]) -> dict[str, Any]:
    label = f"{plan.level:.0%} load ({plan.rate_per_s:.2f}/s)"
    patients = await run.prepare(plan.samples, rng, label)
    rss = PeakRss(pids)
    cpu = CpuWindow(pids, run.stack.state_dir)
    cpu.start()
    window_start = time.time_ns()
    out = await run.send(patients, arrival_offsets(plan.rate_per_s, plan.samples, rng), label, rss.sample)
    window = (window_start, time.time_ns())
    seen = run.watcher.seen
    cpu_ms = cpu.stop(per=sum(1 for k in out["accepted"] if k in seen))
    from_accepted, from_scheduled = histogram(), histogram()
    for key, at in out["accepted"].items():
        if key in seen:
            from_accepted.record_value(max(int((seen[key] - at) * 1e6), 1))
            from_scheduled.record_value(max(int((seen[key] - out["scheduled"][key]) * 1e6), 1))
    return {
        "level": plan.level,
        "rate_per_s": plan.rate_per_s,
        "sent": plan.samples,
        "accepted": len(out["accepted"]),
        "rejected": out["rejected"],
        "transport_errors": out["transport_errors"],
        "paused_seen": from_accepted.get_total_count(),
        "sender_lag_s": out["sender_lag_s"],
        **percentiles_ms(from_accepted),
        # From the arrival time the schedule gave: includes any wait for the HTTP answer itself.
        **percentiles_ms(from_scheduled, "scheduled_"),
        "rss_peak_mib": rss.peak,
        # What a report costs at this load: small batches cost more per report than the burst's.
        "cpu_ms_per_report": cpu_ms,
        "window_ns": window,
    }


async def measure(
    stack: Stack,
    *,
    samples: int | Sizing,
    burst: int,
    levels: tuple[float, ...],
    single_samples: int,
    progress: Progress,
    log: Callable[[str], None],
    sustain_step_s: float = SUSTAIN_STEP_S,
    sustain_refine: int = 2,
) -> dict[str, Any]:
    """The single-report idle latency first (while the stack is idle), then the burst, the sustained maximum
    and each level."""
    watcher = Watcher(stack.kafka.bootstrap, PAUSED_TOPIC, paused_patient)
    await watcher.start()
    rng = random.Random(100)
    pids = {name: s.proc.pid for name, s in stack.services.items() if s.proc is not None}
    try:
        # The bench calls as a service account, with a token the bench stack's services trust (development secret).
        token = mint_token(Role.SERVICE, "carecoord-bench", ttl_s=24 * 3600)
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200), headers=headers) as http,
            LoadClient(stack.services["safety"].url, headers=headers, max_connections=200, timeout_s=60) as load,
        ):
            run = Run(stack, watcher, http, load, progress)
            single = skips = skips_prepare = None
            if single_samples:
                single = await measure_single(run, single_samples, rng)
                before_prepare, before, after = single.pop("offsets")
                skips = await skipped.measure(stack.kafka.bootstrap, before, after, single["accepted"])
                skips_prepare = await skipped.measure(stack.kafka.bootstrap, before_prepare, before, single_samples)
                log(
                    f"single report, idle: p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms "
                    f"({single['paused_seen']}/{single['sent']} seen)"
                )
            burst_run = await measure_burst(run, burst, rng)
            log(
                f"burst: {burst_run['max_per_s']:.1f} reports/s ({burst_run['completed']} of {burst} in "
                f"{burst_run['seconds']:.1f} s); preparing a patient takes {burst_run['prepare_s_per_patient'] * 1000:.0f} ms"
            )
            log(
                f"sustained maximum: steps of {sustain_step_s:g} s of steady load from {burst_run['max_per_s'] / 2:.1f}/s"
            )
            maximum = await measure_sustained(run, burst_run["max_per_s"], sustain_step_s, sustain_refine, rng, log)
            log(f"sustained maximum: {maximum['max_per_s']:.1f} reports/s")
            plans = plan_levels(maximum["max_per_s"], samples, burst_run["prepare_s_per_patient"], DRAIN_S / 4, levels)
            for p in plans:
                log(
                    f"  {p.level:.0%}: {p.rate_per_s:.2f} reports/s × {p.samples} samples ≈ {human_duration(p.total_s)} "
                    f"({human_duration(p.prepare_s)} preparing, {human_duration(p.send_s)} sending)"
                )
            log(f"the latency levels will take about {human_duration(sum(p.total_s for p in plans))}")
            rows = []
            for p in plans:
                row = await run_level(run, p, rng, pids)
                log(
                    f"  {p.level:.0%} load: p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, "
                    f"max {row['max_ms']:.0f} ms ({row['paused_seen']}/{row['sent']} seen)"
                )
                rows.append(row)
    finally:
        await watcher.stop()
    return {
        "single": single,
        "skipped": skips,
        "skipped_prepare": skips_prepare,
        "burst": burst_run,
        "maximum": maximum,
        "levels": rows,
    }
