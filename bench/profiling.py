"""Summarising py-spy's collapsed stacks: which frames the samples fell in."""

from __future__ import annotations

from collections import Counter
from typing import Any

# Leaf frames of a thread that waits (the event loop's poll, the span and metric exporters' threads):
# py-spy's idle detection lets some through; they are counted apart, not as work.
WAITING = ("EpollSelector.select", "Condition.wait", "Event.wait", "Queue.get", "Lock.acquire")

# Frames whose inclusive share says where the hop's work goes.
OF_INTEREST = (
    "EventConsumer.handle",
    "UnitOfWork.transaction",
    "OutboxRelay.drain_once",
    "AsyncSession.execute",
    "BaseModel.model_validate",  # pydantic: envelopes and payloads, in the consumer and again in the relay
    "Tracer.start_span",
    "BatchProcessor",
    "_SelectorSocketTransport.write",
)


def top_frames(collapsed: str, n: int = 12) -> dict[str, Any]:
    """Where the samples are: by leaf frame (self time, waiting apart) and inclusive, for frames of interest."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        leaf = _short(frames[-1])
        if leaf.startswith(WAITING):
            waiting += k
        else:
            own[leaf] += k
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += k
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "waiting_pct": pct(waiting),
        "self_top": [(frame, pct(c)) for frame, c in own.most_common(n)],
        "of_interest": [
            (name, pct(sum(c for f, c in inclusive.items() if f.startswith(name)))) for name in OF_INTEREST
        ],
        "inclusive_top": [(frame, pct(c)) for frame, c in inclusive.most_common(n * 3)],
    }


def _short(frame: str) -> str:
    """``handle (carecoord_shared/messaging/consumer.py:123)`` -> ``handle (consumer.py)``: lines differ per call site."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})" if path else name
