"""The offset commit is not awaited before the next poll (issue 22), commits still land in order,
and they are coalesced: one per interval while records keep coming, at once when idle or stopping.

A commit is a broker round trip. The consumer used to await it before polling again, so an event
arriving meanwhile waited for it (each report sends a service events it only skips, each
committed like any other). Now the next poll runs while the commit is in flight; the next
commit waits for that one, so one is in flight at a time and offsets only move forward. And a
commit per fetch was a large part of the broker's CPU per report: now records that keep coming
share a commit per interval. Driven on a stand-in consumer (no broker): asyncio's scheduling
alone decides what runs when.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import OffsetAndMetadata

from carecoord_contracts import Envelope
from carecoord_contracts.safety import SideEffectReported
from carecoord_shared.messaging.consumer import EventConsumer

from .consumer_fakes import DeadLetters, FlakyDatabase, Parking

TP = TopicPartition("safety.reports", 0)


class _Kafka:
    """What SafeFetch and the loop use of AIOKafkaConsumer; each poll gets the next batch, commits wait for ``release``."""

    def __init__(self, batches: list[list[ConsumerRecord]]) -> None:
        self.batches = batches
        self.polls = 0
        self.release = asyncio.Event()
        self.stop = asyncio.Event()
        self.committed: list[dict[TopicPartition, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.timeouts: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def position(self, _tp: TopicPartition) -> int:
        return 0

    async def getmany(self, *_partitions: TopicPartition, timeout_ms: int, max_records: int) -> Any:
        self.polls += 1
        self.timeouts.append(timeout_ms)
        if self.batches:
            return {TP: self.batches.pop(0)}
        try:
            await asyncio.wait_for(self.stop.wait(), timeout_ms / 1000)
        except TimeoutError:
            return {}  # what aiokafka returns when the wait ends with nothing
        raise ConsumerStoppedError()

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            self.committed.append({tp: meta.offset for tp, meta in offsets.items()})
        finally:
            self.in_flight -= 1


class _Raw:
    async def close(self) -> None:
        pass


def _skipped_record(offset: int) -> ConsumerRecord:
    """A valid event the consumer has no handler for: skipped, committed like any other, no database."""
    event = SideEffectReported(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version="t")
    body = Envelope.wrap(event, patient_id=uuid.uuid4(), producer="safety").model_dump_json().encode()
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, b"k", body, None, -1, len(body), [])


async def _ticks(n: int = 50) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_the_next_poll_runs_while_the_commit_is_in_flight_and_commits_land_one_at_a_time_in_order() -> None:
    kafka = _Kafka([[_skipped_record(0)], [_skipped_record(1)], [_skipped_record(2)]])
    consumer = EventConsumer("dosing", FlakyDatabase(), DeadLetters(), parking=Parking(), commit_interval_s=0.0)  # type: ignore[arg-type]
    loop = asyncio.create_task(consumer.run(kafka, _Raw()))  # type: ignore[arg-type]

    await _ticks()
    # The first commit has not returned, and the consumer polled (and settled) the next record meanwhile;
    # it waits for that commit before it starts its own, and polls again only then.
    assert kafka.committed == []
    assert kafka.polls == 2  # the second poll did not wait; the third waits behind the first commit
    kafka.release.set()
    await _ticks()
    assert kafka.committed == [{TP: 1}, {TP: 2}, {TP: 3}]
    assert kafka.most_in_flight == 1

    kafka.stop.set()
    await asyncio.wait_for(loop, 5)


async def test_records_that_keep_coming_share_one_commit_per_interval_and_an_idle_poll_commits_the_rest() -> None:
    kafka = _Kafka([[_skipped_record(i)] for i in range(5)])
    consumer = EventConsumer("dosing", FlakyDatabase(), DeadLetters(), parking=Parking(), commit_interval_s=60.0)  # type: ignore[arg-type]
    kafka.release.set()
    loop = asyncio.create_task(consumer.run(kafka, _Raw()))  # type: ignore[arg-type]

    await _ticks()
    # The first batch was committed at once (no commit before it), the four after it within the interval wait.
    assert kafka.committed == [{TP: 1}]
    assert kafka.polls == 6  # none of the five polls waited for a commit
    # The sixth poll found nothing: it waits no longer than the poll timeout, then commits what is pending.
    assert kafka.timeouts[-1] <= 500
    await asyncio.sleep(kafka.timeouts[-1] / 1000 + 0.2)
    assert kafka.committed == [{TP: 1}, {TP: 5}]

    kafka.stop.set()
    await asyncio.wait_for(loop, 5)


async def test_a_stopping_consumer_commits_what_is_pending() -> None:
    kafka = _Kafka([[_skipped_record(0)], [_skipped_record(1)]])
    consumer = EventConsumer("dosing", FlakyDatabase(), DeadLetters(), parking=Parking(), commit_interval_s=60.0)  # type: ignore[arg-type]
    kafka.release.set()
    loop = asyncio.create_task(consumer.run(kafka, _Raw()))  # type: ignore[arg-type]
    await _ticks()
    assert kafka.committed == [{TP: 1}]  # the second record's offset is pending

    loop.cancel()  # the service stopping (Runtime.stop cancels the consume task)
    try:
        await asyncio.wait_for(loop, 5)
    except asyncio.CancelledError:
        pass
    assert kafka.committed == [{TP: 1}, {TP: 2}]


async def test_a_commit_in_flight_when_the_loop_ends_is_cancelled_not_left_running() -> None:
    kafka = _Kafka([[_skipped_record(0)]])
    consumer = EventConsumer("dosing", FlakyDatabase(), DeadLetters(), parking=Parking())  # type: ignore[arg-type]
    loop = asyncio.create_task(consumer.run(kafka, _Raw()))  # type: ignore[arg-type]
    await _ticks()
    assert kafka.in_flight == 1

    kafka.stop.set()  # the consumer stopped: the loop returns
    await asyncio.wait_for(loop, 5)
    await _ticks()

    assert kafka.in_flight == 0 and kafka.committed == []  # delivered again from the last commit: the inbox
