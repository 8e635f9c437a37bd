"""Summarising py-spy's collapsed stacks: which frames the samples fell in."""

from __future__ import annotations

from collections import Counter
from typing import Any


def top_frames(collapsed: str, n: int = 12) -> dict[str, Any]:
    """Where the samples are: by leaf frame (self time) and by a few frames of interest (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        own[_short(frames[-1])] += k
        for frame in {_short(f) for f in frames}:
            inclusive[frame] += k
    pct = lambda c: round(100 * c / total, 1) if total else 0.0  # noqa: E731
    return {
        "samples": total,
        "self_top": [(frame, pct(c)) for frame, c in own.most_common(n)],
        "inclusive_top": [(frame, pct(c)) for frame, c in inclusive.most_common(n * 3)],
    }


def _short(frame: str) -> str:
    """``handle (carecoord_shared/messaging/consumer.py:123)`` -> ``handle (consumer.py)``: lines differ per call site."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({path.rsplit('/', 1)[-1]})" if path else name
