"""Scaling of the A4 hop: partitions {1, 2, 4} × instances {1, 2}, and its profile.

Each configuration gets a fresh input topic with that many partitions and
starts that many ``bench.worker`` processes in one consumer group (instances
of a service, sharing its database). Once the group has settled:

- throughput: a backlog of input events is written at once; rate = outputs
  (``SideEffectReported`` read back off its topic by this process) per second
  between the first and the last output;
- latency: open-loop Poisson load at half that throughput; time from the
  input's send to its output read back, in an HDR histogram.

The profile: one worker draining a backlog while py-spy samples it.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from rich.progress import Progress

from carecoord_contracts import Envelope, Topic, topic_for_event
from carecoord_shared.messaging.topic_admin import ensure_topics

from .hop import reset_tables
from .latency import histogram, percentiles_ms
from .load import arrival_offsets, open_loop
from .profiling import top_frames
from .watch import Watcher, reported_report
from .workload import PATIENTS, make_envelope

PARTITIONS = (1, 2, 4)
INSTANCES = (1, 2)
SETTLE_TIMEOUT_S = 90.0
DRAIN_TIMEOUT_S = 600.0
LATENCY_LOAD = 0.5


class Workers:
    """``count`` bench.worker processes in one group, and what partitions each holds."""

    def __init__(self, bootstrap: str, database_url: str, topic: Topic, count: int) -> None:
        group = f"bench-scale-{uuid.uuid4().hex[:8]}"
        self.args = [bootstrap, database_url, topic.name, str(topic.partitions), group]
        self.count = count
        self.partitions = topic.partitions
        self.procs: list[asyncio.subprocess.Process] = []
        self.assigned: list[int] = []
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for i in range(self.count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.worker",
                *self.args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            self.procs.append(proc)
            self.assigned.append(0)
            self._readers.append(asyncio.create_task(self._read(i, proc)))

    async def _read(self, i: int, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            if line.startswith(b"assigned "):
                self.assigned[i] = int(line.split()[1])

    def settled(self) -> bool:
        """Every partition assigned, and to every instance that can get one."""
        busy = sum(1 for a in self.assigned if a)
        return sum(self.assigned) == self.partitions and busy == min(self.count, self.partitions)

    async def wait_settled(self) -> None:
        deadline = time.perf_counter() + SETTLE_TIMEOUT_S
        stable_since: float | None = None
        while time.perf_counter() < deadline:
            if any(p.returncode is not None for p in self.procs):
                raise RuntimeError("a bench.worker exited early (run it by hand to see why)")
            if self.settled():
                stable_since = stable_since or time.perf_counter()
                if time.perf_counter() - stable_since >= 2.0:
                    return
            else:
                stable_since = None
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the group did not settle: assignments {self.assigned}")

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for reader in self._readers:
            reader.cancel()


class Input:
    """Writes SideEffectReportSubmitted envelopes to a topic, noting when each report id was sent."""

    def __init__(self, bootstrap: str, topic: str, seed: int) -> None:
        self.topic = topic
        self.rng = random.Random(seed)
        self.patients = [uuid.UUID(int=self.rng.getrandbits(128)) for _ in range(PATIENTS)]
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
        self.sent_at: dict[str, float] = {}

    async def __aenter__(self) -> Input:
        await self.producer.start()
        return self

    async def __aexit__(self, *_exc: Any) -> None:
        await self.producer.stop()

    async def send(self) -> str:
        env: Envelope = make_envelope(self.rng, self.patients)
        report = str(env.payload["report_id"])
        headers = [(k, v.encode()) for k, v in env.headers().items()]
        self.sent_at[report] = time.perf_counter()
        await self.producer.send(self.topic, env.model_dump_json().encode(), key=env.key, headers=headers)
        return report

    async def backlog(self, count: int) -> list[str]:
        reports = [await self.send() for _ in range(count)]
        await self.producer.flush()
        return reports


async def fresh_topic(bootstrap: str, partitions: int) -> Topic:
    topic = Topic(
        name=f"bench.scale.{uuid.uuid4().hex[:8]}",
        producer="patient-app",
        consumers=(),
        events=("SideEffectReportSubmitted",),
        partitions=partitions,
    )
    await asyncio.to_thread(ensure_topics, bootstrap, (topic,))
    return topic


async def run_config(
    bootstrap: str,
    database_url: str,
    engine: Any,
    partitions: int,
    instances: int,
    backlog: int,
    samples: int,
    progress: Progress,
    seed: int,
) -> dict[str, Any]:
    label = f"{partitions} partition(s) × {instances} instance(s)"
    await reset_tables(engine)
    topic = await fresh_topic(bootstrap, partitions)
    watcher = Watcher(bootstrap, topic_for_event("SideEffectReported").name, reported_report)
    await watcher.start()
    workers = Workers(bootstrap, database_url, topic, instances)
    task = progress.add_task(f"{label}: starting, waiting for the group", total=None)
    try:
        await workers.start()
        await workers.wait_settled()
        async with Input(bootstrap, topic.name, seed) as source:
            warm = await source.backlog(20)
            await watcher.wait_for(warm, DRAIN_TIMEOUT_S)
            progress.update(task, description=f"{label}: throughput", total=backlog, completed=0)
            reports = await source.backlog(backlog)
            deadline = time.perf_counter() + DRAIN_TIMEOUT_S
            while time.perf_counter() < deadline and not all(r in watcher.seen for r in reports):
                progress.update(task, completed=sum(1 for r in reports if r in watcher.seen))
                await asyncio.sleep(0.5)
            done = sorted(watcher.seen[r] for r in reports if r in watcher.seen)
            rate = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
            if rate <= 0:
                raise RuntimeError(f"{label}: no throughput measured")
            progress.update(
                task, description=f"{label}: latency at {LATENCY_LOAD:.0%} of {rate:.0f}/s", total=samples, completed=0
            )
            sent: list[str] = []

            async def one(_i: int) -> None:
                sent.append(await source.send())

            await open_loop(
                arrival_offsets(rate * LATENCY_LOAD, samples, source.rng), one, lambda _i: progress.advance(task)
            )
            await source.producer.flush()
            await watcher.wait_for(sent, DRAIN_TIMEOUT_S)
            hist = histogram()
            for r in sent:
                if r in watcher.seen:
                    hist.record_value(max(int((watcher.seen[r] - source.sent_at[r]) * 1e6), 1))
    finally:
        progress.remove_task(task)
        await workers.stop()
        await watcher.stop()
    return {
        "partitions": partitions,
        "instances": instances,
        "backlog": backlog,
        "throughput_per_s": rate,
        "throughput_outputs": len(done),
        "latency_rate_per_s": rate * LATENCY_LOAD,
        "latency_samples": samples,
        "latency_seen": hist.get_total_count(),
        **percentiles_ms(hist),
        "assignments": list(workers.assigned),
    }


async def measure(
    bootstrap: str, database_url: str, engine: Any, *, backlog: int, samples: int, progress: Progress, log: Any
) -> list[dict[str, Any]]:
    rows = []
    for i, (partitions, instances) in enumerate((p, n) for p in PARTITIONS for n in INSTANCES):
        row = await run_config(
            bootstrap, database_url, engine, partitions, instances, backlog, samples, progress, seed=300 + i
        )
        log(
            f"  {partitions} partition(s) × {instances} instance(s): {row['throughput_per_s']:.0f} ev/s, "
            f"p99 {row['p99_ms']:.0f} ms at {row['latency_rate_per_s']:.0f} ev/s"
        )
        rows.append(row)
    return rows


# --- the profile ---------------------------------------------------------------


async def profile(
    bootstrap: str, database_url: str, engine: Any, out_dir: Path, *, seconds: float, progress: Progress
) -> dict[str, Any]:
    """py-spy samples one worker (the A4 hop, one process, one partition) while it drains a backlog."""
    await reset_tables(engine)
    topic = await fresh_topic(bootstrap, 1)
    workers = Workers(bootstrap, database_url, topic, 1)
    raw = out_dir / "a4-profile.txt"
    svg = out_dir / "a4-profile.svg"
    task = progress.add_task(f"profiling the A4 hop with py-spy for {seconds:g} s", total=None)
    try:
        await workers.start()
        await workers.wait_settled()
        async with Input(bootstrap, topic.name, seed=900) as source:
            # More than it can drain in the window: it is busy the whole time.
            await source.backlog(int(seconds * 1000))
        pid = str(workers.procs[0].pid)
        py_spy = Path(sys.executable).parent / "py-spy"
        common = ["--pid", pid, "--duration", str(int(seconds)), "--rate", "100"]
        # Two recordings at once would stop the process twice per sample: collapsed stacks first, then a flame graph.
        for fmt, path in (("raw", raw), ("flamegraph", svg)):
            proc = await asyncio.create_subprocess_exec(
                str(py_spy),
                "record",
                *common,
                "--format",
                fmt,
                "-o",
                str(path),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    finally:
        progress.remove_task(task)
        await workers.stop()
    return {"collapsed": str(raw), "flamegraph": str(svg), "seconds": seconds, **top_frames(raw.read_text())}
