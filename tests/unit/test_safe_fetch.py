"""SafeFetch when the broker goes away in the middle of isolating a record it could not decode.

Found by the fault suite: billing's fetch met a header key that is not UTF-8, read one partition
of intake.patients on its own (positions moved past its records), then the broker restarted
before the next partition was read; the exception dropped the records collected so far while the
positions stayed past them, and the next commit skipped nine of intake's events for good.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError

from carecoord_records.fetch import SafeFetch
from carecoord_records.raw_records import Parsed

A, B = TopicPartition("intake.patients", 0), TopicPartition("intake.patients", 1)


def _record(tp: TopicPartition, offset: int) -> ConsumerRecord:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"{}", None, 1, 2, ())


class _Consumer:
    """Positions as aiokafka keeps them: moved by handing records out and by seek."""

    def __init__(self) -> None:
        self.positions = {A: 6, B: 3}

    def assignment(self) -> set[TopicPartition]:
        return set(self.positions)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    def highwater(self, tp: TopicPartition) -> int:
        return 20

    async def getmany(self, *partitions: TopicPartition, **_: Any) -> dict[TopicPartition, list[ConsumerRecord]]:
        if not partitions:  # the whole fetch: drains A, then fails to decode a record
            self.positions[A] = 11
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        if partitions == (A,):
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        raise KafkaConnectionError("the broker restarted")


class _Raw:
    async def read(self, tp: TopicPartition, offset: int) -> Parsed:
        return Parsed([_record(tp, o) for o in range(offset, offset + 5)], [], offset + 5)

    async def close(self) -> None:
        pass


async def test_a_broker_error_while_isolating_leaves_every_partition_where_the_fetch_began() -> None:
    consumer = _Consumer()
    fetch = SafeFetch(consumer, _Raw(), max_records=50)  # type: ignore[arg-type]
    with pytest.raises(KafkaConnectionError):
        await fetch.getmany(timeout_ms=500)
    assert consumer.positions == {A: 6, B: 3}


class _Rejoining(_Consumer):
    """A rebalance in the middle of the fetch hands the consumer partition C, which the fetch drains
    before it fails to decode a record elsewhere."""

    C = TopicPartition("safety.reports", 2)

    def __init__(self) -> None:
        super().__init__()
        self.committed_offsets = {self.C: 18}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.positions[tp] = 0

    async def getmany(self, *partitions: TopicPartition, **_: Any) -> dict[TopicPartition, list[ConsumerRecord]]:
        if not partitions:
            self.positions[self.C] = 24  # assigned at 18 (its commit), drained to 24, then the failure
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return {}


async def test_a_partition_assigned_during_a_failed_fetch_goes_back_to_its_commit() -> None:
    consumer = _Rejoining()
    fetch = SafeFetch(consumer, _Raw(), max_records=50)  # type: ignore[arg-type]
    await fetch.getmany(timeout_ms=500)
    assert consumer.positions[_Rejoining.C] == 18
    assert (consumer.positions[A], consumer.positions[B]) == (6, 3)
