"""PNG plots of a bench run: latency percentiles against load, throughput per arm, scaling."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

PERCENTILES = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9"), ("max_ms", "max"))


def latency_vs_load(levels: list[dict[str, Any]], max_per_s: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [row["level"] * 100 for row in levels]
    for key, label in PERCENTILES:
        ax.plot(x, [row[key] for row in levels], marker="o", label=label)
    ax.axhline(50, color="grey", linestyle="--", linewidth=1, label="target p99 at 50 %: 50 ms")
    ax.set_yscale("log")
    ax.set_xlabel(f"load, % of the measured maximum ({max_per_s:.1f} reports/s)")
    ax.set_ylabel("report accepted → plan paused (ms)")
    ax.set_title("End-to-end latency, open-loop Poisson load")
    ax.set_xticks(x)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def throughput_per_arm(summary: dict[str, dict[str, Any]], order: Sequence[str], path: Path) -> Path:
    arms = [a for a in order if a in summary]
    med = [summary[a]["median_msgs_per_s"] for a in arms]
    low = [m - summary[a]["min_msgs_per_s"] for a, m in zip(arms, med, strict=True)]
    high = [summary[a]["max_msgs_per_s"] - m for a, m in zip(arms, med, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.bar(arms, med, yerr=[low, high], capsize=4, color="#4477aa")
    for i, m in enumerate(med):
        ax.annotate(f"{m:,.0f}", (i, m), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("messages per second (median, range)")
    ax.set_title("Throughput per arm")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def scaling(rows: list[dict[str, Any]], path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for instances in sorted({r["instances"] for r in rows}):
        mine = sorted((r for r in rows if r["instances"] == instances), key=lambda r: r["partitions"])
        x = [r["partitions"] for r in mine]
        left.plot(x, [r["throughput_per_s"] for r in mine], marker="o", label=f"{instances} instance(s)")
        right.plot(x, [r["p99_ms"] for r in mine], marker="o", label=f"{instances} instance(s)")
    left.set_ylabel("events per second")
    left.set_title("A4 hop throughput")
    right.set_ylabel("p99 ms at 50 % of that throughput")
    right.set_title("A4 hop latency")
    for ax in (left, right):
        ax.set_xlabel("partitions")
        ax.set_xticks(sorted({r["partitions"] for r in rows}))
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
