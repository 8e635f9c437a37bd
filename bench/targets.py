"""The issue's targets next to what was measured: met or missed, and by how much.

Report only: no test asserts these (timing on a shared 2-core machine).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

A4_MIN_EVENTS_PER_S = 5000.0
A4_MIN_OF_A0E = 0.20
A1_MIN_OF_A0 = 0.50
P99_MAX_MS_AT_HALF_LOAD = 50.0
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


def evaluate(
    summary: dict[str, dict[str, Any]], latency: list[dict[str, Any]], idle_rss_mib: dict[str, float]
) -> list[Verdict]:
    rate = lambda arm: summary[arm]["median_msgs_per_s"] if arm in summary else None  # noqa: E731
    a4, a0e, a1, a0 = rate("A4"), rate("A0e"), rate("A1"), rate("A0")
    half = next((row for row in latency if abs(row.get("level", 0) - 0.5) < 1e-9), None)
    out = [
        at_least("A4 full hop, one process", A4_MIN_EVENTS_PER_S, a4, "ev/s"),
        at_least("A4 / A0e", A4_MIN_OF_A0E * 100, a4 / a0e * 100 if a4 and a0e else None, "%", "{:,.1f}"),
        at_least("A1 / A0", A1_MIN_OF_A0 * 100, a1 / a0 * 100 if a1 and a0 else None, "%", "{:,.1f}"),
        at_most(
            "report → plan paused p99 at 50 % load", P99_MAX_MS_AT_HALF_LOAD, half["p99_ms"] if half else None, "ms"
        ),
    ]
    for service, mib in idle_rss_mib.items():
        out.append(at_most(f"{service} idle RSS", IDLE_RSS_MAX_MIB, mib, "MiB"))
    if not idle_rss_mib:
        out.append(at_most("services' idle RSS", IDLE_RSS_MAX_MIB, None, "MiB"))
    return out
