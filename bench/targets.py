"""The issues' targets next to what was measured: met or missed, and by how much.

Issue #22's (performance): report → plan paused p99 < 50 ms at 50 % of the
measured maximum and p50 < 15 ms for a single report on an idle stack; a
maximum ≥ 150 reports/s; A4 ≥ 5 000 ev/s and ≥ 20 % of A0e; the headline
p50 and p99 at most 5 × the floor's (bench/floor.py); idle RSS < 150 MiB per
service. Issue #11's A1 ≥ 50 % of A0 stays. Report only: no test asserts
these (timing on a shared 2-core machine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

A4_MIN_EVENTS_PER_S = 5000.0
A4_MIN_OF_A0E = 0.20
A1_MIN_OF_A0 = 0.50
P99_MAX_MS_AT_HALF_LOAD = 50.0
P50_MAX_MS_SINGLE_IDLE = 15.0
MAXIMUM_MIN_REPORTS_PER_S = 150.0
FLOOR_MAX_MULTIPLE = 5.0
IDLE_RSS_MAX_MIB = 150.0


@dataclass(frozen=True)
class Verdict:
    target: str
    wanted: str
    measured: str
    met: bool | None  # None: not measured in this run
    margin: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_least(target: str, wanted: float, measured: float | None, unit: str, fmt: str = "{:,.0f}") -> Verdict:
    if measured is None:
        return Verdict(target, f"≥ {fmt.format(wanted)} {unit}".strip(), "not measured", None, "—")
    met = measured >= wanted
    diff = measured - wanted
    if met:
        margin = f"{fmt.format(diff)} {unit} above".strip()
    else:
        factor = f"×{wanted / measured:,.1f} needed" if measured > 0 else "nothing measured"
        short = f"{fmt.format(-diff)} points" if unit == "%" else f"{fmt.format(-diff)} {unit}".strip()
        margin = f"{short} short ({factor})"
    return Verdict(
        target, f"≥ {fmt.format(wanted)} {unit}".strip(), f"{fmt.format(measured)} {unit}".strip(), met, margin
    )


def at_most(target: str, wanted: float, measured: float | None, unit: str, fmt: str = "{:,.0f}") -> Verdict:
    if measured is None:
        return Verdict(target, f"< {fmt.format(wanted)} {unit}", "not measured", None, "—")
    met = measured < wanted
    diff = measured - wanted
    margin = (
        f"{fmt.format(-diff)} {unit} below the limit"
        if met
        else f"{fmt.format(diff)} {unit} over (×{measured / wanted:,.1f})"
    )
    return Verdict(target, f"< {fmt.format(wanted)} {unit}", f"{fmt.format(measured)} {unit}", met, margin)


def multiple(measured_ms: float | None, floor_ms: float | None) -> float | None:
    """How many floors a latency is; None when either was not measured (or the floor is zero)."""
    if measured_ms is None or not floor_ms:
        return None
    return measured_ms / floor_ms


def within_multiple(target: str, wanted: float, measured_ms: float | None, floor_ms: float | None) -> Verdict:
    """``measured_ms`` at most ``wanted`` times ``floor_ms`` (inclusive: the issue says ≤)."""
    times = multiple(measured_ms, floor_ms)
    if times is None or measured_ms is None or floor_ms is None:
        return Verdict(target, f"≤ {wanted:g} × floor", "not measured", None, "—")
    measured = f"{times:,.1f} × ({measured_ms:,.1f} / {floor_ms:,.2f} ms)"
    met = times <= wanted
    if met:
        margin = f"{wanted - times:,.1f} × below the limit"
    else:
        margin = f"{times - wanted:,.1f} × over ({times / wanted:,.1f} times the limit)"
    return Verdict(target, f"≤ {wanted:g} × floor", measured, met, margin)


def half_load(levels: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((row for row in levels if abs(row.get("level", 0) - 0.5) < 1e-9), None)


def floor_multiples(
    floor: dict[str, Any] | None, single: dict[str, Any] | None, levels: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each measured latency row's p50 and p99 as a multiple of the floor's p50 and p99."""
    if not floor:
        return []
    rows = ([("single report, idle", single)] if single else []) + [(f"{r['level']:.0%} load", r) for r in levels]
    return [
        {
            "row": name,
            "p50_ms": r["p50_ms"],
            "p50_x": multiple(r["p50_ms"], floor["p50_ms"]),
            "p99_ms": r["p99_ms"],
            "p99_x": multiple(r["p99_ms"], floor["p99_ms"]),
        }
        for name, r in rows
    ]


def evaluate(
    summary: dict[str, dict[str, Any]],
    latency: list[dict[str, Any]],
    idle_rss_mib: dict[str, float],
    *,
    maximum_per_s: float | None = None,
    single: dict[str, Any] | None = None,
    floor: dict[str, Any] | None = None,
) -> list[Verdict]:
    """``latency``: the load levels' rows; ``single``: the single-report idle row; ``floor``: bench/floor.py's."""
    rate = lambda arm: summary[arm]["median_msgs_per_s"] if arm in summary else None  # noqa: E731
    a4, a0e, a1, a0 = rate("A4"), rate("A0e"), rate("A1"), rate("A0")
    half = half_load(latency)
    floor_p50 = floor["p50_ms"] if floor else None
    floor_p99 = floor["p99_ms"] if floor else None
    out = [
        at_least("A4 full hop, one process", A4_MIN_EVENTS_PER_S, a4, "ev/s"),
        at_least("A4 / A0e", A4_MIN_OF_A0E * 100, a4 / a0e * 100 if a4 and a0e else None, "%", "{:,.1f}"),
        at_least("A1 / A0", A1_MIN_OF_A0 * 100, a1 / a0 * 100 if a1 and a0 else None, "%", "{:,.1f}"),
        at_most(
            "report → plan paused p99 at 50 % load", P99_MAX_MS_AT_HALF_LOAD, half["p99_ms"] if half else None, "ms"
        ),
        at_most(
            "report → plan paused p50, single report idle",
            P50_MAX_MS_SINGLE_IDLE,
            single["p50_ms"] if single else None,
            "ms",
        ),
        at_least("maximum, end to end", MAXIMUM_MIN_REPORTS_PER_S, maximum_per_s, "reports/s", "{:,.1f}"),
        within_multiple(
            "single report idle p50 / floor p50", FLOOR_MAX_MULTIPLE, single["p50_ms"] if single else None, floor_p50
        ),
        within_multiple("50 % load p99 / floor p99", FLOOR_MAX_MULTIPLE, half["p99_ms"] if half else None, floor_p99),
    ]
    for service, mib in idle_rss_mib.items():
        out.append(at_most(f"{service} idle RSS", IDLE_RSS_MAX_MIB, mib, "MiB"))
    if not idle_rss_mib:
        out.append(at_most("services' idle RSS", IDLE_RSS_MAX_MIB, None, "MiB"))
    return out
