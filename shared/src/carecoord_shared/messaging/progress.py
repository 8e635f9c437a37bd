"""Is the consumer moving? A partition whose position stands still while records wait.

Lag alone does not tell a stall from a burst: a partition 500 records behind
that moved a second ago is working, one 1 record behind whose position has
not changed for minutes is stuck (a record it cannot get past, a loop that
died). Positions are sampled by the service's gauge loop every few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from opentelemetry.metrics import Observation

from ..telemetry import meter


class PartitionProgress:
    def __init__(self, *, stall_after_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        # partition -> (position, highwater, when the position last changed or the partition caught up)
        self._seen: dict[TopicPartition, tuple[int, int, float]] = {}
        meter().create_observable_gauge(
            "carecoord.consumer.stalled_partitions",
            callbacks=[lambda _o: [Observation(len(self.stalled()))]],
            description="Assigned partitions whose position has not moved for a while although records wait",
        )

    def observe(self, positions: dict[TopicPartition, tuple[int, int]]) -> None:
        """Each assigned partition's (position, highwater) now; partitions no longer assigned are forgotten."""
        now = self._clock()
        seen: dict[TopicPartition, tuple[int, int, float]] = {}
        for tp, (position, highwater) in positions.items():
            previous = self._seen.get(tp)
            moved = previous is None or previous[0] != position or position >= highwater
            seen[tp] = (position, highwater, now if moved or previous is None else previous[2])
        self._seen = seen

    def stalled(self) -> list[dict[str, object]]:
        now = self._clock()
        return [
            {
                "topic": tp.topic,
                "partition": tp.partition,
                "lag": highwater - position,
                "stalled_s": round(now - since, 1),
            }
            for tp, (position, highwater, since) in sorted(self._seen.items())
            if position < highwater and now - since >= self.stall_after_s
        ]


def degraded(checks: dict[str, Any]) -> list[str]:
    """Short reasons an operator must look, from a readiness body's checks (empty when all is well)."""
    reasons = []
    consumer = checks.get("consumer") or {}
    if not consumer.get("running", True):
        reasons.append("consumer: the consume loop is not running")
    if stalled := consumer.get("stalled_partitions"):
        reasons.append(f"consumer: {len(stalled)} partition(s) not moving while records wait")
    if parked := consumer.get("parked_keys"):
        reasons.append(f"consumer: {parked} key(s) parked")
    background = checks.get("background") or {}
    for task, error in (background.get("failed") or {}).items():
        reasons.append(f"background: {task} stopped ({error}); see the service's log")
    outbox = checks.get("outbox")
    if isinstance(outbox, dict) and (parked := outbox.get("parked_keys")):
        reasons.append(f"outbox: {parked} key(s) parked")
    return reasons
