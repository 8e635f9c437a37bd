"""Median and range per arm, ratio to its baseline, and what each layer costs per message."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from rich.table import Table


def summarize(runs: list[dict[str, Any]], arms: Sequence[Any]) -> dict[str, dict[str, Any]]:
    rates: dict[str, list[float]] = {}
    for run in runs:
        rates.setdefault(run["arm"], []).append(run["rate"])
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        if arm.key not in rates:
            continue
        median = statistics.median(rates[arm.key])
        out[arm.key] = {
            "title": arm.title,
            "reps": len(rates[arm.key]),
            "median_msgs_per_s": median,
            "min_msgs_per_s": min(rates[arm.key]),
            "max_msgs_per_s": max(rates[arm.key]),
            "us_per_msg": 1e6 / median,
        }
    for arm in arms:
        row = out.get(arm.key)
        if row is None:
            continue
        base = out.get(arm.baseline) if arm.baseline else None
        below = out.get(arm.below) if arm.below else None
        row["ratio_to"] = arm.baseline
        row["ratio"] = row["median_msgs_per_s"] / base["median_msgs_per_s"] if base else None
        row["layer_over"] = arm.below
        row["layer_us_per_msg"] = row["us_per_msg"] - below["us_per_msg"] if below else None
    return out


def table(summary: dict[str, dict[str, Any]], arms: Sequence[Any], *, title: str) -> Table:
    t = Table(title=f"Throughput (median of {title})")
    for col in ("arm", "what", "msg/s median", "range", "ratio", "µs/msg", "layer µs/msg"):
        t.add_column(col, justify="left" if col in ("arm", "what") else "right")
    for arm in arms:
        row = summary.get(arm.key)
        if row is None:
            continue
        t.add_row(
            arm.key,
            arm.title,
            f"{row['median_msgs_per_s']:.0f}",
            f"{row['min_msgs_per_s']:.0f}–{row['max_msgs_per_s']:.0f}",
            f"{row['ratio']:.3f} of {row['ratio_to']}" if row["ratio"] is not None else "—",
            f"{row['us_per_msg']:.0f}",
            f"{row['layer_us_per_msg']:+.0f} over {row['layer_over']}" if row["layer_us_per_msg"] is not None else "—",
        )
    return t


def cpu_table(cost: dict[str, dict[str, float]]) -> Table:
    t = Table(title="CPU per message of a layer's own code (in-process, no I/O)")
    for col in ("layer", "µs/msg median", "range"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for name, row in cost.items():
        t.add_row(name, f"{row['median_us']:.0f}", f"{row['min_us']:.0f}–{row['max_us']:.0f}")
    return t


def ms(value: float) -> str:
    """Milliseconds for a table: one decimal below 10 ms, whole above."""
    return f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def latency_table(latency: dict[str, Any]) -> Table:
    top = latency["maximum"]
    burst = latency.get("burst")
    if burst:
        what = (
            f"sustained maximum {top['max_per_s']:.1f} reports/s (the highest steady rate kept up with); "
            f"a burst of {burst['burst']} finished at {burst['max_per_s']:.1f}/s"
        )
    else:  # a run from before the sustained maximum: its maximum was the burst's
        what = f"maximum {top['max_per_s']:.1f} reports/s ({top['completed']} in {top['seconds']:.1f} s)"
    t = Table(
        title="Report accepted (HTTP 201) → TreatmentPlanPaused read off dosing.plans, open-loop Poisson load; " + what
    )
    with_cpu = any("cpu_ms_per_report" in r for r in latency["levels"])
    for col in (
        "load",
        "reports/s",
        "sent",
        "accepted",
        "paused seen",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        *(("stack CPU ms/report",) if with_cpu else ()),
    ):
        t.add_column(col, justify="right")
    single = latency.get("single")
    if single:
        t.add_row(
            "1 at a time, idle",
            "—",
            str(single["sent"]),
            str(single["accepted"]),
            str(single["paused_seen"]),
            *(ms(single[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")),
            *(("—",) if with_cpu else ()),
        )
    for r in latency["levels"]:
        t.add_row(
            f"{r['level']:.0%}",
            f"{r['rate_per_s']:.2f}",
            str(r["sent"]),
            str(r["accepted"]),
            str(r["paused_seen"]),
            *(ms(r[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")),
            *(
                (f"{stack_cpu_ms(r['cpu_ms_per_report']):.1f}" if "cpu_ms_per_report" in r else "—",)
                if with_cpu
                else ()
            ),
        )
    return t


def stack_cpu_ms(per_report: dict[str, float]) -> float:
    """The stack's CPU per report (services, broker, database and the bench's client), not the rest of the machine."""
    return sum(v for k, v in per_report.items() if k != "rest of the machine")


def sustained_table(maximum: dict[str, Any]) -> Table:
    """The steps of the sustained-maximum search (bench/load.py: SustainedSearch, fell_behind)."""
    t = Table(
        title=f"Sustained maximum: steps of {maximum['step_s']:g} s of steady open-loop load; kept up = every "
        "report paused, the last third's median latency at most 2 × the first third's + 100 ms, and the last "
        "pause at most 1 s after the last report was due"
    )
    for col in (
        "reports/s",
        "sent",
        "paused seen",
        "first third p50 ms",
        "last third p50 ms",
        "p99 ms",
        "drain s",
        "stack CPU ms/report",
        "verdict",
    ):
        t.add_column(col, justify="right")
    for step in maximum["steps"]:
        t.add_row(
            f"{step['rate_per_s']:.1f}",
            str(step["sent"]),
            str(step["paused_seen"]),
            ms(step["first_third_p50_ms"] or 0.0),
            ms(step["last_third_p50_ms"] or 0.0),
            ms(step.get("p99_ms", 0.0)),
            f"{step['drain_s']:.2f}",
            f"{stack_cpu_ms(step['cpu_ms_per_report']):.1f}",
            "kept up" if step["kept_up"] else f"fell behind: {step['fell_behind']}",
        )
    return t


def floor_table(floor: dict[str, Any], multiples: list[dict[str, Any]]) -> Table:
    """The floor's percentiles, whole and per part, then each latency row as a multiple of it."""
    t = Table(title=f"Floor: {floor['what']}; {floor['samples']} samples (ms)")
    for col in ("", "p50", "p95", "p99", "p99.9", "max"):
        t.add_column(col, justify="left" if not col else "right")
    keys = ("p50_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")
    t.add_row("[bold]floor[/bold]", *(f"{floor[k]:.2f}" for k in keys))
    for name, part in floor["parts"].items():
        t.add_row(f"  {name}", *(f"{part[k]:.2f}" for k in keys))
    if not multiples:
        return t
    m = Table(title="Report → plan paused as a multiple of the floor (target ≤ 5 ×)")
    for col in ("latency", "p50 ms", "p50 / floor p50", "p99 ms", "p99 / floor p99"):
        m.add_column(col, justify="left" if col == "latency" else "right")

    def x(v: float | None) -> str:
        return "—" if v is None else f"{v:,.1f} ×"

    for r in multiples:
        m.add_row(r["row"], ms(r["p50_ms"]), x(r["p50_x"]), ms(r["p99_ms"]), x(r["p99_x"]))
    grid = Table.grid()
    grid.add_row(t)
    grid.add_row(m)
    return grid


def spans_table(windows: dict[str, dict[str, Any]]) -> Table:
    """bench/spans.py's parts of a report's time per latency window, p50 / p99."""
    t = Table(
        title="Where a report's time goes, from the services' spans (p50 / p99 ms; the headline clock starts at "
        "the 201, after safety's HTTP part, and ends with one more hop to the bench)"
    )
    cols = (
        ("safety_http", "safety HTTP (before 201)"),
        ("safety_relay", "safety relay"),
        ("kafka_and_wait", "Kafka + waiting in dosing"),
        ("dosing_handling", "dosing handling + commit"),
        ("dosing_sql", "of which SQL"),
        ("dosing_statements", "SQL statements"),
        ("dosing_relay", "dosing relay"),
    )
    t.add_column("latency")
    t.add_column("reports", justify="right")
    for _key, title in cols:
        t.add_column(title, justify="right")
    for name, w in windows.items():
        cells = [
            f"{w[k]['p50']:.0f}" if k == "dosing_statements" else f"{ms(w[k]['p50'])} / {ms(w[k]['p99'])}"
            for k, _title in cols
        ]
        t.add_row(name, str(w["reports"]), *cells)
    return t


def skipped_table(skips: dict[str, Any], what: str = "single reports", per: str = "report") -> Table:
    """Per service: deliveries per report, those of a type it does not handle, and decoding them vs the header."""
    t = Table(
        title=f"Deliveries a service decodes only to skip ({skips['reports']} {what}; "
        "decode = Envelope.model_validate_json in this process, header = the event-type header)"
    )
    for col in ("service", f"deliveries/{per}", f"skipped/{per}", "decode µs", "header µs", f"decode µs/{per}"):
        t.add_column(col, justify="left" if col == "service" else "right")
    for service, r in skips["services"].items():

        def one(k: str, r: dict[str, Any] = r) -> str:
            return "—" if r.get(k) is None else f"{r[k]:.1f}"

        t.add_row(
            service,
            one("deliveries_per_report"),
            one("skipped_per_report"),
            one("decode_us"),
            f"{r['header_us']:.2f}" if "header_us" in r else "—",
            one("decode_us_per_report"),
        )
    return t


def memory_table(idle: dict[str, float], levels: list[dict[str, Any]], idle_after: dict[str, float]) -> Table:
    t = Table(title="Resident set size (VmRSS), MiB")
    t.add_column("service")
    t.add_column("idle (started, caught up)", justify="right")
    for r in levels:
        t.add_column(f"peak at {r['level']:.0%} load", justify="right")
    t.add_column("idle after the load", justify="right")
    for name, mib in idle.items():
        t.add_row(
            name,
            f"{mib:.0f}",
            *(f"{r['rss_peak_mib'].get(name, 0):.0f}" for r in levels),
            f"{idle_after[name]:.0f}" if name in idle_after else "—",
        )
    return t


def scaling_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(
        title="A4 hop scaling: input topic partitions × worker processes in one group (throughput: backlog drained; p99: Poisson at 50 % of it)"
    )
    for col in ("partitions", "instances", "partitions held", "ev/s", "p50 ms", "p99 ms", "max ms", "latency samples"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            str(r["partitions"]),
            str(r["instances"]),
            "+".join(map(str, r["assignments"])),
            f"{r['throughput_per_s']:,.0f}",
            ms(r["p50_ms"]),
            ms(r["p99_ms"]),
            ms(r["max_ms"]),
            f"{r['latency_seen']}/{r['latency_samples']}",
        )
    return t


def profile_table(prof: dict[str, Any]) -> Table:
    t = Table(
        title=f"A4 hop profile (py-spy, {prof['samples']} samples, all threads; {prof['waiting_pct']:.0f} % in waiting frames): "
        "inclusive share of some frames, then the top leaf frames"
    )
    t.add_column("frame")
    t.add_column("% of samples", justify="right")
    for frame, pct in prof["of_interest"]:
        t.add_row(f"[bold]{frame}[/bold] (and below)", f"{pct:.1f}")
    for frame, pct in prof["self_top"]:
        t.add_row(frame, f"{pct:.1f}")
    return t


def targets_table(verdicts: list[Any]) -> Table:
    t = Table(title="Targets (issue #22; A1 / A0 from #11): reported, never asserted")
    for col in ("target", "wanted", "measured", "", "by how much"):
        t.add_column(col, justify="left")
    for v in verdicts:
        mark = "not measured" if v.met is None else ("met" if v.met else "MISSED")
        t.add_row(v.target, v.wanted, v.measured, mark, v.margin)
    return t


def cpu_share_table(maximum: dict[str, Any], during: str = "the maximum") -> Table:
    """bench/cpu_share.py's CPU per report during the maximum (or the burst), per component."""
    per_report = maximum["cpu_ms_per_report"]
    total = stack_cpu_ms(per_report)
    t = Table(
        title=f"CPU per completed report during {during} ({maximum['completed']} reports; the stack's total "
        f"{total:.1f} ms; 'rest of the machine' is other work sharing the CPUs)"
    )
    t.add_column("component")
    t.add_column("CPU ms/report", justify="right")
    t.add_column("share of the stack", justify="right")
    for name, value in per_report.items():
        share = "—" if name == "rest of the machine" or not total else f"{value / total:.0%}"
        t.add_row(name, f"{value:.2f}", share)
    return t


def latency_tables(latency: dict[str, Any], multiples: list[dict[str, Any]], *, prepared: bool = False) -> list[Table]:
    """The end-to-end part's tables, in the order the console and the README show them."""
    maximum, burst = latency["maximum"], latency.get("burst")
    out = [latency_table(latency)]
    if maximum.get("cpu_ms_per_report"):
        during = f"the sustained maximum's step at {maximum['max_per_s']:.1f}/s" if burst else "the maximum"
        out.append(cpu_share_table(maximum, during))
    if maximum.get("steps"):
        out.append(sustained_table(maximum))
    if burst and burst.get("cpu_ms_per_report"):
        out.append(cpu_share_table(burst, f"the burst of {burst['burst']} at once"))
    if latency.get("floor"):
        out.append(floor_table(latency["floor"], multiples))
    if latency.get("spans"):
        out.append(spans_table(latency["spans"]))
    if latency.get("skipped"):
        out.append(skipped_table(latency["skipped"]))
    if prepared and latency.get("skipped_prepare"):
        out.append(skipped_table(latency["skipped_prepare"], "patients prepared with an active plan", "patient"))
    out.append(memory_table(latency["rss_idle_mib"], latency["levels"], latency["rss_idle_after_mib"]))
    return out
