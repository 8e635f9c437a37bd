"""What a service's readiness body says is stuck, and what the operator should do about it.

A service stays ready (HTTP 200) while one partition or one patient's key is
stuck: the rest of its work flows, and a restart would not help. Its body says
so (issue 19); this module reads it:

- ``checks.consumer``: ``stalled_partitions`` (a partition whose position does
  not move while records wait), ``parked_keys`` (patient keys whose later events
  wait behind one in dead letters or retries), ``undecodable_skipped``;
- ``checks.outbox``: ``oldest_age_s`` (the oldest unsent row), ``parked_keys``
  (keys whose rows cannot be sent);
- ``degraded``: the service's own short reasons, empty when fine.

Older services send none of these, and a body may be anything a proxy or a
broken service returns: every field is read defensively, a missing or odd one
is no problem, and no text is trusted as a terminal escape nor a value as a number it is not.
Counts only: the parked keys are patient ids, and a status screen is no place
for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_OUTBOX_AGE_S = 60.0
# A hostile body could hold thousands of entries or megabytes of text.
MAX_LISTED = 10
MAX_TEXT = 120


# Where keys are parked: what that means, and what to do ({service} filled in).
PARKED = {
    "consumer": (
        "their later events wait behind one that is in dead letters or retrying",
        "`carecoord parked list --service {service}` shows who and why; after the fix, `carecoord parked release {service} PATIENT_ID`",
    ),
    "outbox": (
        "their events cannot be published (topic missing or not authorised, or a record too large)",
        "see the {service} log (relay) for the topic and the error; other keys keep flowing",
    ),
}


@dataclass(frozen=True)
class Problem:
    service: str
    what: str
    todo: str

    def as_json(self) -> dict[str, str]:
        return {"what": self.what, "do": self.todo}


def problems(service: str, body: Any, *, max_outbox_age_s: float = DEFAULT_MAX_OUTBOX_AGE_S) -> list[Problem]:
    """Everything stuck that ``body`` (a /health/ready answer, parsed JSON) reports; empty when nothing is."""
    if not isinstance(body, dict):
        return []
    checks = _dict(body.get("checks"))
    consumer, outbox = _dict(checks.get("consumer")), _dict(checks.get("outbox"))
    found = [Problem(service, *p) for p in _stalled(consumer.get("stalled_partitions"))]
    parked = {"consumer": _count(consumer.get("parked_keys")), "outbox": _count(outbox.get("parked_keys"))}
    found += [
        Problem(
            service,
            f"{n} patient key(s) parked in the {where}: {PARKED[where][0]}",
            PARKED[where][1].format(service=service),
        )
        for where, n in parked.items()
        if n
    ]
    age = _number(outbox.get("oldest_age_s"))
    if age is not None and age > max_outbox_age_s:
        what = f"outbox: the oldest unsent event is {age:.0f}s old (more than {max_outbox_age_s:g}s)"
        found.append(
            Problem(
                service, what, f"the relay is not publishing: is Kafka reachable from {service}? see its log (relay)"
            )
        )
    # The service's own summary mostly restates the fields above; one line, so that a reason this
    # CLI does not know yet is still seen, without repeating each known one.
    if reasons := _texts(body.get("degraded")):
        found.append(
            Problem(
                service,
                f"reports itself degraded: {'; '.join(reasons)}",
                f"the lines above say what to do; else see the {service} log",
            )
        )
    return found


def undecodable_skipped(body: Any) -> int:
    """Records the consumer could not decode, dead-lettered by their coordinates and stepped past (not a stall)."""
    checks = _dict(body.get("checks")) if isinstance(body, dict) else {}
    return _count(_dict(checks.get("consumer")).get("undecodable_skipped"))


def _stalled(entries: Any) -> list[tuple[str, str]]:
    if not isinstance(entries, list):
        return []
    found = []
    for listed in entries[:MAX_LISTED]:
        entry = _dict(listed)
        topic = _text(entry.get("topic")) or "?"
        partition = _count(entry.get("partition"))
        lag, stalled_s = _count(entry.get("lag")), _number(entry.get("stalled_s"))
        since = f" for {stalled_s:.0f}s" if stalled_s is not None else ""
        found.append(
            (
                f"{topic}[{partition}] stalled{since} with {lag} record(s) waiting",
                f"the consumer cannot get past a record there: see the log for {topic}[{partition}] and `carecoord dlq list`",
            )
        )
    if len(entries) > MAX_LISTED:
        found.append(
            (f"{len(entries) - MAX_LISTED} more stalled partition(s)", "`carecoord status --json` lists them all")
        )
    return found


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    # bool is an int to Python, and NaN or infinity (which json.loads accepts) is no age.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number > 0 else 0


def _text(value: Any) -> str:
    """Printable and short: no terminal escapes or line breaks (the table escapes rich markup)."""
    if not isinstance(value, str):
        return ""
    return "".join(c if c.isprintable() else "?" for c in value[:MAX_TEXT])


def _texts(values: Any) -> list[str]:
    if not isinstance(values, list):
        return []
    texts = [t for t in (_text(v) for v in values[:MAX_LISTED]) if t]
    return texts + ([f"and {len(values) - MAX_LISTED} more"] if len(values) > MAX_LISTED else [])
