"""``python -m bench``: start the bench stack, run every part, report, stop the stack.

The parts, in order: the throughput arms (interleaved, repeated), the layers'
own CPU, the A4 hop's scaling over partitions × instances and its py-spy
profile, then all five services as processes: their idle memory, the floor
(two raw Kafka hops and two single-row commits, bench/floor.py), the
single-report latency on the idle stack, a burst, the sustained maximum
(bench/latency.py) and the latency levels.

``--headline`` is the last part alone (about five minutes): the floor, the
single report, the burst, the sustained maximum and 50 % of it; no throughput
arms (unless ``--arms``), scaling or profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from carecoord_devstack.stack import Stack
from carecoord_shared.persistence import create_engine

from . import cpu
from .arms import ARMS, Context
from .infra import LOOPS, RESULTS_DIR, STATE_DIR, bench_database, start_stack, use_loop
from .load import Sizing, human_duration
from .memory import rss_mib
from .report import (
    cpu_table,
    latency_tables,
    profile_table,
    scaling_table,
    summarize,
    table,
    targets_table,
)
from .targets import evaluate, floor_multiples
from .workload import prefill

WARMUP_MESSAGES = 200
MIN_MESSAGES = 100
# The input topic's length; the fastest arm's runs are capped here and are then shorter than --seconds.
MAX_MESSAGES = 40000
FULL_LEVELS, HEADLINE_LEVELS = "10,50,80", "50"
HEADLINE_SAMPLES = 1000
# The full run sizes each level by sending time (load.Sizing says why): about 2 minutes, 1 000 to 5 000 samples.
FULL_SIZING = Sizing(send_s=120.0, least=1000, most=5000)


# One arm run's wall time is about 3 × --seconds + 4 s (group join, set-up, runs sized from a faster warm-up):
# 13.7 s a run measured at --seconds 3, 2.3 s at --seconds 1 on a quieter machine.
def arms_estimate_s(n_arms: int, reps: int, seconds: float) -> float:
    return n_arms * (reps + 1) * (3 * seconds + 4)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--reps", type=int, default=5, help="measured repetitions of every arm (default 5)")
    p.add_argument("--seconds", type=float, default=3.0, help="target length of one measured run (default 3)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run, not numbers to quote: 2 reps of ~1 s, 40 latency samples per level, small scaling runs",
    )
    p.add_argument(
        "--headline",
        action="store_true",
        help=f"the headline alone, a few minutes: the floor, the single-report idle latency, the burst, the "
        f"sustained maximum and "
        f"{HEADLINE_LEVELS} %% of it ({HEADLINE_SAMPLES} samples unless --samples); no throughput arms unless --arms, "
        "no scaling or profile",
    )
    p.add_argument(
        "--arms", default=None, help="comma-separated subset, e.g. A0,A4 (default: all; with --headline: none)"
    )
    p.add_argument(
        "--fast-unsafe-db",
        action="store_true",
        help="PostgreSQL without fsync (like the tests); default is durable commits",
    )
    p.add_argument(
        "--no-latency",
        action="store_true",
        help="skip the end-to-end latency and memory part (it starts all five services)",
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help=f"latency samples (reports) per load level (default: {FULL_SIZING.send_s:g} s of sending at the level's rate, "
        f"{FULL_SIZING.least} to {FULL_SIZING.most}; {HEADLINE_SAMPLES} with --headline)",
    )
    p.add_argument(
        "--levels",
        default=None,
        help=f"load levels, %% of the measured maximum (default {FULL_LEVELS}; {HEADLINE_LEVELS} with --headline)",
    )
    p.add_argument(
        "--single-samples",
        type=int,
        default=200,
        help="reports sent one at a time on the idle stack, for the single-report p50 (default 200; 0 skips)",
    )
    p.add_argument(
        "--floor-samples",
        type=int,
        default=2000,
        help="floor samples (2 raw Kafka hops + 2 single-row commits each; default 2000; 0 skips)",
    )
    p.add_argument(
        "--burst",
        type=int,
        default=200,
        help="reports sent at once; half their rate starts the sustained-maximum search (default 200)",
    )
    p.add_argument(
        "--sustain-seconds",
        type=float,
        default=10.0,
        help="sending time of one step of steady load in the sustained-maximum search (default 10)",
    )
    p.add_argument(
        "--sustain-refine",
        type=int,
        default=None,
        help="steps between the last rate kept up with and the first that fell behind (default 2; 1 with --headline)",
    )
    p.add_argument("--no-scaling", action="store_true", help="skip the partitions × instances runs and the profile")
    p.add_argument(
        "--scale-backlog", type=int, default=2000, help="events drained per scaling configuration (default 2000)"
    )
    p.add_argument(
        "--scale-samples", type=int, default=1000, help="latency samples per scaling configuration (default 1000)"
    )
    p.add_argument(
        "--profile-seconds", type=float, default=15.0, help="how long py-spy samples the A4 hop (default 15)"
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default=LOOPS[0],
        help="the event loop of the services, the workers and the bench's own arms (default asyncio, the services'; "
        "uvloop to compare)",
    )
    args = p.parse_args(argv)
    if args.arms is None:
        args.arms = "" if args.headline else ",".join(a.key for a in ARMS)
    if args.headline:
        args.no_scaling = True
    if args.levels is None:
        args.levels = HEADLINE_LEVELS if args.headline else FULL_LEVELS
    if args.samples is None and args.headline:
        args.samples = HEADLINE_SAMPLES
    if args.sustain_refine is None:
        args.sustain_refine = 1 if args.headline else 2
    if args.quick:
        args.reps, args.seconds, args.samples, args.burst = 2, 1.0, 40, 30
        args.sustain_seconds, args.sustain_refine = 2.0, 0
        args.single_samples, args.floor_samples = min(args.single_samples, 20), min(args.floor_samples, 200)
        args.scale_backlog, args.scale_samples, args.profile_seconds = 150, 60, 4.0
    return args


def selected_arms(args: argparse.Namespace) -> list[Any]:
    keys = [k for k in args.arms.split(",") if k]
    return [a for a in ARMS if a.key in keys]


def plan(args: argparse.Namespace) -> list[str]:
    """The parts this run will do, in order (printed first; the headline mode is the last ones alone)."""
    parts = []
    arms = selected_arms(args)
    if arms:
        parts.append(f"throughput arms {','.join(a.key for a in arms)} × {args.reps} reps, layers' CPU")
    if not args.no_scaling:
        parts.append("A4 scaling (partitions × instances) and profile")
    if not args.no_latency:
        parts.append("five services: idle RSS")
        if args.floor_samples:
            parts.append(f"floor × {args.floor_samples}")
        if args.single_samples:
            parts.append(f"single report idle × {args.single_samples}")
        parts.append(f"burst {args.burst}")
        parts.append(f"sustained maximum (steps of {args.sustain_seconds:g} s, {args.sustain_refine} refining)")
        per_level = args.samples or f"{FULL_SIZING.least}–{FULL_SIZING.most} ({FULL_SIZING.send_s:g} s of sending)"
        parts += [f"{level} % load × {per_level}" for level in args.levels.split(",")]
    return parts


async def measure(
    args: argparse.Namespace, console: Console, bootstrap: str, database_url: str
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    arms = selected_arms(args)
    with console.status("writing the input topic"):
        size = await prefill(bootstrap, MAX_MESSAGES)
    console.print(f"input: {MAX_MESSAGES} SideEffectReportSubmitted envelopes, {size} bytes each on average")
    counts = dict.fromkeys((a.key for a in arms), WARMUP_MESSAGES)
    ctx = Context(bootstrap, database_url)
    runs: list[dict] = []
    try:
        with progress_bar(console) as progress:
            total = progress.add_task("runs", total=len(arms) * (args.reps + 1))
            for rep in range(args.reps + 1):  # rep 0 warms every code path up and is not recorded
                order = arms[rep % len(arms) :] + arms[: rep % len(arms)]  # rotate: no arm always runs first
                for arm in order:
                    n = counts[arm.key]
                    label = "warm-up" if rep == 0 else f"rep {rep}/{args.reps}"
                    progress.update(total, description=f"{label}  {arm.key} ({n} msgs)")
                    clock = await arm.run(ctx, n)
                    if rep == 0:  # size each arm's runs to last about args.seconds
                        counts[arm.key] = int(min(max(clock.rate() * args.seconds, MIN_MESSAGES), MAX_MESSAGES))
                    else:
                        runs.append(
                            {
                                "arm": arm.key,
                                "rep": rep,
                                "messages": clock.done_count,
                                "seconds": clock.seconds(),
                                "rate": clock.rate(),
                            }
                        )
                        progress.console.print(f"  {arm.key:4} rep {rep}: {clock.rate():9.0f} msg/s")
                    progress.advance(total)
        with console.status("timing the validation and observability layers' own CPU"):
            cpu_cost = cpu.measure(ctx, max(args.reps, 3))
    finally:
        await ctx.close()
    return runs, cpu_cost


def progress_bar(console: Console) -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def scale_and_profile(
    args: argparse.Namespace, console: Console, bootstrap: str, database_url: str, out_dir: Path, a4_rate: float | None
) -> tuple[list[dict], dict[str, Any] | None]:
    from . import scaling

    if a4_rate:
        configs = len(scaling.PARTITIONS) * len(scaling.INSTANCES)
        per = args.scale_backlog / a4_rate + args.scale_samples / (a4_rate * scaling.LATENCY_LOAD) + 15
        console.print(
            f"scaling: {configs} configurations, about {human_duration(configs * per)} at A4's {a4_rate:.0f} ev/s "
            f"(less where more instances help); profile {args.profile_seconds:g} s"
        )

    async def run() -> tuple[list[dict], dict[str, Any] | None]:
        engine = create_engine(database_url)
        try:
            with progress_bar(console) as progress:
                log = lambda m: progress.console.print(f"[dim]{m}[/dim]")  # noqa: E731
                rows = await scaling.measure(
                    bootstrap,
                    database_url,
                    engine,
                    backlog=args.scale_backlog,
                    samples=args.scale_samples,
                    progress=progress,
                    log=log,
                )
                prof = await scaling.profile(
                    bootstrap, database_url, engine, out_dir, seconds=args.profile_seconds, progress=progress
                )
            return rows, prof
        finally:
            await engine.dispose()

    return asyncio.run(run())


def end_to_end(args: argparse.Namespace, console: Console, stack: Stack, database_url: str) -> dict[str, Any]:
    from . import floor, latency  # need the bench dependency group (make bench syncs it); the throughput arms do not

    skipped = asyncio.run(latency.start_groups_at_end(stack.kafka.bootstrap))
    console.print(f"the services' groups start at the end of their topics ({skipped} bench records skipped)")
    with console.status("starting the five services, waiting until they have caught up"):
        stack.start_services()
        asyncio.run(latency.settle(stack.kafka.bootstrap))
        time.sleep(5)  # start-up garbage settles; "idle" is a service with nothing to do
    pids = {name: s.proc.pid for name, s in stack.services.items() if s.proc is not None}
    idle = {name: rss_mib(pid) for name, pid in pids.items()}
    console.print("idle RSS: " + ", ".join(f"{n} {m:.0f} MiB" for n, m in idle.items()))
    floor_result = None
    if args.floor_samples:
        with progress_bar(console) as progress:
            task = progress.add_task("floor: 2 raw Kafka hops + 2 single-row commits", total=args.floor_samples)
            floor_result = floor.run(
                stack.kafka.bootstrap, database_url, args.floor_samples, lambda: progress.advance(task)
            )
        console.print(f"floor: p50 {floor_result['p50_ms']:.2f} ms, p99 {floor_result['p99_ms']:.2f} ms")
    levels = tuple(float(x) / 100 for x in args.levels.split(","))
    console.print(
        f"latency: {args.single_samples} single reports on the idle stack first, then a burst ({args.burst} "
        f"reports at once), the sustained maximum (steps of steady load), then {len(levels)} levels × "
        f"{args.samples or 'sized'} samples"
    )
    with progress_bar(console) as progress:
        result = asyncio.run(
            latency.measure(
                stack,
                samples=args.samples or FULL_SIZING,
                burst=args.burst,
                levels=levels,
                single_samples=args.single_samples,
                sustain_step_s=args.sustain_seconds,
                sustain_refine=args.sustain_refine,
                progress=progress,
                log=lambda m: progress.console.print(f"[dim]{m}[/dim]"),
            )
        )
    time.sleep(5)
    result["rss_idle_mib"] = idle
    result["floor"] = floor_result
    result["rss_idle_after_mib"] = {name: rss_mib(pid) for name, pid in pids.items()}
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    use_loop(args.loop)
    console = Console(width=None if sys.stdout.isatty() else 150)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    commit = git_commit()  # at the start: the code the services were started from
    out_dir = RESULTS_DIR / started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    n_arms = len(selected_arms(args))
    console.print("plan: " + "; ".join(plan(args)))
    if n_arms:
        console.print(
            f"throughput arms: about {human_duration(arms_estimate_s(n_arms, args.reps, args.seconds))}; "
            "the scaling and latency parts print their own estimate once the rates they depend on are measured"
        )
    stack = start_stack(lambda m: console.print(f"[dim][stack] {m}[/dim]"), fast_unsafe_db=args.fast_unsafe_db)
    scaling_rows: list[dict] = []
    prof: dict[str, Any] | None = None
    latency: dict[str, Any] = {}
    try:
        database_url = asyncio.run(bench_database(stack))
        runs: list[dict] = []
        cpu_cost: dict[str, dict[str, float]] = {}
        if n_arms:
            runs, cpu_cost = asyncio.run(measure(args, console, stack.kafka.bootstrap, database_url))
        summary = summarize(runs, ARMS)
        if summary:
            console.print(
                table(summary, ARMS, title=f"{args.reps} reps, {os.cpu_count()} CPUs, load {load_before[0]:.1f} before")
            )
        if not args.no_scaling:
            a4 = summary.get("A4", {}).get("median_msgs_per_s")
            scaling_rows, prof = scale_and_profile(args, console, stack.kafka.bootstrap, database_url, out_dir, a4)
        if not args.no_latency:
            latency = end_to_end(args, console, stack, database_url)
    finally:
        stack.down()
    if latency:
        latency["spans"] = span_breakdown(latency)
    verdicts = evaluate(
        summary,
        latency.get("levels", []),
        latency.get("rss_idle_mib", {}),
        maximum_per_s=latency["maximum"]["max_per_s"] if latency.get("maximum") else None,
        single=latency.get("single"),
        floor=latency.get("floor"),
    )
    result = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "wall_s": time.perf_counter() - t0,
        "args": vars(args),
        "argv": argv,
        "commit": commit,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "note": "shared with other workloads unless you made sure it was not; compare arms within a run, not across runs",
        },
        "runs": runs,
        "summary": summary,
        "cpu_us_per_msg": cpu_cost,
        "scaling": scaling_rows,
        "profile": prof,
        "latency": latency,
        "floor_multiples": floor_multiples(latency.get("floor"), latency.get("single"), latency.get("levels", [])),
        "targets": [v.as_dict() for v in verdicts],
    }
    plots = write_plots(out_dir, summary, scaling_rows, latency)
    path = out_dir / "results.json"
    path.write_text(json.dumps(result, indent=2))
    if summary:
        console.print(
            table(summary, ARMS, title=f"{args.reps} reps, {os.cpu_count()} CPUs, load {load_before[0]:.1f} before")
        )
    if cpu_cost:
        console.print(cpu_table(cpu_cost))
    if scaling_rows:
        console.print(scaling_table(scaling_rows))
    if prof:
        console.print(profile_table(prof))
    if latency:
        for t in latency_tables(latency, result["floor_multiples"], prepared=True):
            console.print(t)
    console.print(targets_table(verdicts))
    load_after = os.getloadavg()
    console.print(
        f"wall time {human_duration(result['wall_s'])}; load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    console.print(
        f"results: {path}"
        + "".join(f"\n         {p}" for p in plots)
        + (f"\n         {prof['flamegraph']}" if prof else "")
    )
    return 0


def git_commit() -> dict[str, Any] | None:
    """The code measured: HEAD, and whether tracked files differed from it (the README says so)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an unpacked tarball): the results say nothing about a commit
    return {"sha": sha, "dirty": bool(status.strip())}


def span_breakdown(latency: dict[str, Any]) -> dict[str, Any]:
    """Where each latency window's reports spent their time, from the services' spans (written out by now)."""
    from . import spans

    windows = {f"{r['level']:.0%} load": tuple(r["window_ns"]) for r in latency.get("levels", [])}
    if latency.get("single"):
        windows = {"single report, idle": tuple(latency["single"]["window_ns"]), **windows}
    return spans.breakdown(STATE_DIR / "traces", windows)


def write_plots(out_dir: Path, summary: dict, scaling_rows: list[dict], latency: dict[str, Any]) -> list[Path]:
    from . import plots

    out = (
        [plots.throughput_per_arm(summary, [a.key for a in ARMS], out_dir / "throughput-per-arm.png")]
        if summary
        else []
    )
    if scaling_rows:
        out.append(plots.scaling(scaling_rows, out_dir / "scaling.png"))
    if latency.get("levels"):
        out.append(
            plots.latency_vs_load(latency["levels"], latency["maximum"]["max_per_s"], out_dir / "latency-vs-load.png")
        )
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
