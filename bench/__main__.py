"""``python -m bench``: start the bench stack, run every arm interleaved, report, stop the stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import cpu
from carecoord_devstack.stack import Stack

from .arms import ARMS, Context
from .infra import RESULTS_DIR, bench_database, start_stack
from .report import cpu_table, latency_table, summarize, table
from .workload import prefill


WARMUP_MESSAGES = 200
MIN_MESSAGES = 100
# The input topic's length; the fastest arm's runs are capped here and are then shorter than --seconds.
MAX_MESSAGES = 40000


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--reps", type=int, default=5, help="measured repetitions of every arm (default 5)")
    p.add_argument("--seconds", type=float, default=3.0, help="target length of one measured run (default 3)")
    p.add_argument("--quick", action="store_true", help="2 repetitions of ~1 s: a smoke run, not numbers to quote")
    p.add_argument("--arms", default=",".join(a.key for a in ARMS), help="comma-separated subset, e.g. A0,A4")
    p.add_argument(
        "--fast-unsafe-db", action="store_true", help="PostgreSQL without fsync (like the tests); default is durable commits"
    )
    p.add_argument("--no-latency", action="store_true", help="skip the end-to-end latency run (it starts all five services)")
    p.add_argument("--rates", default="1,2,4", help="report arrival rates per second for the latency run (default 1,2,4)")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="length of the latency run at each rate (default 20)")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.seconds, args.rates, args.latency_seconds = 2, 1.0, "2,5", 4.0
    return args


async def measure(
    args: argparse.Namespace, console: Console, bootstrap: str, database_url: str
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    arms = [a for a in ARMS if a.key in args.arms.split(",")]
    with console.status("writing the input topic"):
        size = await prefill(bootstrap, MAX_MESSAGES)
    console.print(f"input: {MAX_MESSAGES} SideEffectReportSubmitted envelopes, {size} bytes each on average")
    counts = dict.fromkeys((a.key for a in arms), WARMUP_MESSAGES)
    ctx = Context(bootstrap, database_url)
    runs: list[dict] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            total = progress.add_task("runs", total=len(arms) * (args.reps + 1))
            for rep in range(args.reps + 1):  # rep 0 warms every code path up and is not recorded
                order = arms[rep % len(arms):] + arms[: rep % len(arms)]  # rotate: no arm always runs first
                for arm in order:
                    n = counts[arm.key]
                    label = "warm-up" if rep == 0 else f"rep {rep}/{args.reps}"
                    progress.update(total, description=f"{label}  {arm.key} ({n} msgs)")
                    clock = await arm.run(ctx, n)
                    if rep == 0:  # size each arm's runs to last about args.seconds
                        counts[arm.key] = int(min(max(clock.rate() * args.seconds, MIN_MESSAGES), MAX_MESSAGES))
                    else:
                        runs.append({"arm": arm.key, "rep": rep, "messages": clock.done_count, "seconds": clock.seconds(), "rate": clock.rate()})
                        progress.console.print(f"  {arm.key:4} rep {rep}: {clock.rate():9.0f} msg/s")
                    progress.advance(total)
        with console.status("timing the validation and observability layers' own CPU"):
            cpu_cost = cpu.measure(ctx, max(args.reps, 3))
    finally:
        await ctx.close()
    return runs, cpu_cost


def end_to_end(args: argparse.Namespace, console: Console, stack: Stack) -> list[dict]:
    from . import latency  # needs the bench dependency group (make bench syncs it); the throughput arms do not

    with console.status("starting the five services"):
        stack.start_services()
    rates = [float(r) for r in args.rates.split(",")]
    return asyncio.run(latency.measure(stack, rates, args.latency_seconds, lambda m: console.print(f"[dim]{m}[/dim]")))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    stack = start_stack(lambda m: console.print(f"[dim][stack] {m}[/dim]"), fast_unsafe_db=args.fast_unsafe_db)
    try:
        database_url = asyncio.run(bench_database(stack))
        runs, cpu_cost = asyncio.run(measure(args, console, stack.kafka.bootstrap, database_url))
        latencies = [] if args.no_latency else end_to_end(args, console, stack)
    finally:
        stack.down()
    summary = summarize(runs, ARMS)
    result = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "args": vars(args),
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
        "latency": latencies,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"throughput-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    console.print(table(summary, ARMS, title=f"{args.reps} reps, {os.cpu_count()} CPUs, load {load_before[0]:.1f} before"))
    console.print(cpu_table(cpu_cost))
    if latencies:
        console.print(latency_table(latencies))
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
