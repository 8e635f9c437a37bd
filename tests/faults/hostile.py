"""Another team's producer sending garbage at the protocol level, all through the fault run.

Records the Kafka record format allows but no well-behaved client writes, onto
every topic some service consumes and every partition of it, interleaved with
the load's valid traffic: header keys that are not UTF-8, header values that
are not text or null, null values, empty and binary keys, thousands of
headers, a header far larger than any real one. The checker's counts
(nothing lost, missed or reordered) and quiesce (every group past every
record) must hold regardless; the figures say how many of each were sent.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable

from carecoord_contracts.topics import BUSINESS_TOPICS, SERVICES, topics_consumed_by
from carecoord_devstack.stack import Stack
from tests.raw_records import RawRecord, produce_raw

KINDS: dict[str, Callable[[random.Random], RawRecord]] = {
    "header key not UTF-8": lambda r: RawRecord(
        r.randbytes(16), b"{}", [(b"\xff\xfe", b"x"), (b"event-type", b"SideEffectReported")]
    ),
    "header values binary and null": lambda r: RawRecord(
        b"k", b"{}", [(b"event-type", b"\xc3\x28"), (b"traceparent", None)]
    ),
    "null value": lambda r: RawRecord(r.randbytes(8), None),
    "empty key": lambda r: RawRecord(b"", b'{"type": "SideEffectReported"}'),
    "binary key, binary value": lambda r: RawRecord(r.randbytes(37), r.randbytes(200)),
    "5,000 headers": lambda r: RawRecord(b"k", b"{}", [(b"h%d" % i, b"v") for i in range(5000)]),
    "a 200 KB header": lambda r: RawRecord(b"k", b"{}", [(b"x-big", b"a" * 200_000)]),
}


def consumed_topics() -> list[str]:
    consumed = {t.name for service in SERVICES for t in topics_consumed_by(service)}
    return sorted(t.name for t in BUSINESS_TOPICS if t.name in consumed)


class HostileProducer:
    def __init__(self, stack: Stack, rng: random.Random) -> None:
        self.stack = stack
        self.rng = rng
        self.sent: Counter[str] = Counter()
        self.refused = 0  # the broker was away (the nemesis restarts it): not sent, not counted
        self.covered: set[tuple[str, int, str]] = set()

    async def run(self, done: asyncio.Event, gap_s: tuple[float, float] = (0.1, 0.4)) -> None:
        topics = {t.name: t.partitions for t in BUSINESS_TOPICS if t.name in consumed_topics()}
        # Every topic and partition gets every kind at least once, then at random until the faults end.
        pending = [(topic, p, kind) for topic, n in topics.items() for p in range(n) for kind in KINDS]
        self.rng.shuffle(pending)
        while pending or not done.is_set():
            topic, partition, kind = (
                pending.pop() if pending else (self.rng.choice(list(topics)), None, self.rng.choice(list(KINDS)))
            )
            partition = partition if partition is not None else self.rng.randrange(topics[topic])
            try:
                await asyncio.wait_for(
                    produce_raw(self.stack.kafka.bootstrap, topic, partition, [KINDS[kind](self.rng)]), timeout=20
                )
                self.sent[kind] += 1
                self.covered.add((topic, partition, kind))
            except Exception:
                self.refused += 1
                if (topic, partition, kind) not in self.covered and self.refused < 10 * len(KINDS) * len(topics):
                    pending.insert(0, (topic, partition, kind))
            await asyncio.sleep(self.rng.uniform(*gap_s))

    def figures(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.sent.items()))
        return f"{sum(self.sent.values())} sent ({kinds}); {len(self.covered)} topic-partition-kind cells covered; {self.refused} refused while the broker was away"
