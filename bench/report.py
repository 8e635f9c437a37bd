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
            f"+{row['layer_us_per_msg']:.0f} over {row['layer_over']}" if row["layer_us_per_msg"] is not None else "—",
        )
    return t


def cpu_table(cost: dict[str, dict[str, float]]) -> Table:
    t = Table(title="CPU per message of a layer's own code (in-process, no I/O)")
    for col in ("layer", "µs/msg median", "range"):
        t.add_column(col, justify="left" if col == "layer" else "right")
    for name, row in cost.items():
        t.add_row(name, f"{row['median_us']:.0f}", f"{row['min_us']:.0f}–{row['max_us']:.0f}")
    return t


def latency_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(title="Report accepted (HTTP 201) → TreatmentPlanPaused read off dosing.plans, open-loop Poisson load")
    for col in ("reports/s", "sent", "accepted", "paused seen", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(
            f"{r['rate_per_s']:g}", str(r["sent"]), str(r["accepted"]), str(r["paused_seen"]),
            *(f"{r[k]:.0f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
        )
    return t
