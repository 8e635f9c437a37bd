"""Where a report's time goes, from the services' own spans (``CARECOORD_TRACES_DIR`` JSON lines).

One report is one trace: safety's ``POST /v1/side-effect-reports`` (SERVER),
its relay's ``publish safety.holds``, dosing's ``process safety.holds``
(with the SQL statements under it) and dosing's ``publish dosing.plans`` of
the ``TreatmentPlanPaused``. The parts, in ms:

- ``safety_http``: the POST inside safety, before the 201 (not on the
  headline clock, which starts at the 201);
- ``safety_relay``: the 201 → safety's relay publishing the hold;
- ``kafka_and_wait``: that publish → dosing starting to process it (the hop
  and any wait behind dosing's other work);
- ``dosing_handling``: dosing's processing span (handling and commit), and
  within it ``dosing_sql`` (its statements' time, from the transaction spans'
  ``db.statement_durations_ms``) and ``dosing_statements``;
- ``dosing_relay``: dosing's commit → its relay publishing the pause.

(The last hop, to the bench's own reader, is the rest of the headline.)
Each report is put in the window its POST started in (the single reports,
each level).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SERVER = "POST /v1/side-effect-reports"
HOLD_PUBLISHED = "publish safety.holds"
HOLD_PROCESSED = "process safety.holds"
PLANS_PUBLISHED = "publish dosing.plans"
PAUSED = "TreatmentPlanPaused"
PARTS = (
    "safety_http",
    "safety_relay",
    "kafka_and_wait",
    "dosing_handling",
    "dosing_sql",
    "dosing_statements",
    "dosing_relay",
)


def flow_parts(spans: Iterable[dict[str, Any]]) -> dict[str, float] | None:
    """One report's trace → its parts (ms; the statement count as a number), or None when a span is missing."""
    server = hold_pub = hold_proc = paused = None
    sql: list[dict[str, Any]] = []
    for s in spans:
        name = s["name"]
        if name == SERVER and s["kind"] == "SERVER":
            server = s
        elif name == HOLD_PUBLISHED:
            hold_pub = s
        elif name == HOLD_PROCESSED:
            hold_proc = s
        elif name == PLANS_PUBLISHED and s["attributes"].get("carecoord.event.type") == PAUSED:
            paused = s
        elif "db.system" in s["attributes"] and s["service"] == "carecoord-dosing":
            sql.append(s)
    if server is None or hold_pub is None or hold_proc is None or paused is None:
        return None
    inside = [s for s in sql if hold_proc["start"] <= s["start"] and s["end"] <= hold_proc["end"]]
    durations = [d for s in inside for d in s["attributes"].get("db.statement_durations_ms", ())]
    ms = 1e6
    return {
        "start_ns": server["start"],
        "safety_http": (server["end"] - server["start"]) / ms,
        "safety_relay": (hold_pub["start"] - server["end"]) / ms,
        "kafka_and_wait": (hold_proc["start"] - hold_pub["start"]) / ms,
        "dosing_handling": (hold_proc["end"] - hold_proc["start"]) / ms,
        "dosing_sql": sum(durations),
        "dosing_statements": float(len(durations)),
        "dosing_relay": (paused["start"] - hold_proc["end"]) / ms,
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def summarize(flows: list[dict[str, float]], windows: dict[str, tuple[int, int]]) -> dict[str, dict[str, Any]]:
    """Per window (name → [start, end) in ns since the epoch): how many reports, each part's p50 and p99."""
    out: dict[str, dict[str, Any]] = {}
    for name, (t0, t1) in windows.items():
        mine = [f for f in flows if t0 <= f["start_ns"] < t1]
        if not mine:
            continue
        out[name] = {"reports": len(mine)}
        for part in PARTS:
            values = [f[part] for f in mine]
            out[name][part] = {"p50": quantile(values, 0.5), "p99": quantile(values, 0.99)}
    return out


def _relevant(line: str) -> bool:
    # Most lines are other SQL or HTTP spans: skip them before parsing.
    return any(k in line for k in (SERVER, HOLD_PUBLISHED, HOLD_PROCESSED, PLANS_PUBLISHED, '"db.system"'))


def read_flows(traces_dir: Path) -> list[dict[str, float]]:
    """Every complete report trace in safety's and dosing's span files."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for service in ("safety", "dosing"):
        path = traces_dir / f"{service}.jsonl"
        if not path.exists():
            continue
        with path.open() as f:
            for line in f:
                if _relevant(line):
                    span = json.loads(line)
                    by_trace.setdefault(span["trace_id"], []).append(span)
    flows = (flow_parts(spans) for spans in by_trace.values())
    return [f for f in flows if f is not None]


def breakdown(traces_dir: Path, windows: dict[str, tuple[int, int]]) -> dict[str, dict[str, Any]]:
    return summarize(read_flows(traces_dir), windows)
