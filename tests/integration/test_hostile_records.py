"""Records the client cannot decode, on a real broker: nothing else is lost, the bad one is pinned down.

aiokafka's getmany, on a record whose header key is not UTF-8, raises after it
has advanced the positions of the partitions it drained first and thrown their
records away; the bad partition then fails every fetch (issue 19). SafeFetch
must hand out every other record exactly in order and give up on the bad one
by its coordinates after a bounded number of attempts.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from carecoord_contracts.topics import Topic
from carecoord_devstack.stack import Stack
from carecoord_records.fetch import SafeFetch
from carecoord_records.raw_records import RawFetcher
from carecoord_shared.messaging.topic_admin import ensure_topics
from tests.raw_records import RawRecord, produce_raw

BAD_HEADER_KEY = RawRecord(key=b"p", value=b"{}", headers=[(b"\xff\xfe", b"x")])


def _good(n: int) -> RawRecord:
    return RawRecord(key=b"k", value=f"good-{n}".encode(), headers=[(b"event-type", b"Test")])


@pytest.fixture
async def topic(stack: Stack) -> str:
    name = f"test.hostile.{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(
        ensure_topics, stack.kafka.bootstrap, (Topic(name=name, producer="test", consumers=(), events=()),)
    )
    return name


async def _consumer(stack: Stack, topic: str) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    return consumer, partitions


async def test_plain_getmany_loses_the_records_of_other_partitions(stack: Stack, topic: str) -> None:
    """The fault itself, so that the test below is known to face it."""
    for partition in (1, 2):
        await produce_raw(stack.kafka.bootstrap, topic, partition, [_good(partition * 10 + i) for i in range(3)])
    await produce_raw(stack.kafka.bootstrap, topic, 0, [BAD_HEADER_KEY])
    consumer, partitions = await _consumer(stack, topic)
    try:
        got: list[bytes] = []
        failures = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and failures < 3:
            try:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend(r.value for r in records)
            except UnicodeDecodeError:
                failures += 1
        assert failures == 3, "aiokafka decoded a non-UTF-8 header key: the fault this suite guards against is gone"
        positions = {tp.partition: await consumer.position(tp) for tp in partitions}
        # Partition 0 never gets past the bad record. (Whether the other partitions' records were
        # also lost depends on the order aiokafka drains partitions in; the e2e test shows it.)
        assert positions[0] == 0
        assert len(got) <= sum(positions[p] for p in (1, 2))
    finally:
        await consumer.stop()


async def test_every_record_comes_once_in_order_the_bad_header_key_repaired(stack: Stack, topic: str) -> None:
    bootstrap = stack.kafka.bootstrap
    await produce_raw(bootstrap, topic, 1, [_good(10), _good(11), _good(12)])
    await produce_raw(bootstrap, topic, 2, [_good(20), _good(21), _good(22)])
    # The bad record in the middle of a batch of partition 0, with good ones on both sides:
    # through aiokafka, good-3 is out of reach as well (it decodes the batch from its start).
    first = await produce_raw(bootstrap, topic, 0, [_good(0), _good(1), BAD_HEADER_KEY, _good(3)])
    await produce_raw(bootstrap, topic, 0, [_good(4)])
    await produce_raw(bootstrap, topic, 2, [_good(23)])
    consumer, partitions = await _consumer(stack, topic)
    fetch = SafeFetch(consumer, RawFetcher({"bootstrap_servers": bootstrap}), max_records=50)
    got: dict[int, list[tuple[int, bytes]]] = {0: [], 1: [], 2: []}
    undecodable = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(map(len, got.values())) < 12:
            fetched = await fetch.getmany(timeout_ms=500)
            for record in fetched.records:
                got[record.partition].append((record.offset, record.value))
                if record.value == b"{}":
                    repaired = record
            undecodable += fetched.undecodable
        positions = {tp.partition: await consumer.position(tp) for tp in partitions}
    finally:
        await fetch.close()
        await consumer.stop()

    assert [v for _o, v in got[0]] == [b"good-0", b"good-1", b"{}", b"good-3", b"good-4"]
    assert [o for o, _v in got[0]] == [first + i for i in range(5)]
    assert [v for _o, v in got[1]] == [b"good-10", b"good-11", b"good-12"]
    assert [v for _o, v in got[2]] == [b"good-20", b"good-21", b"good-22", b"good-23"]
    assert undecodable == []
    assert positions == {0: first + 5, 1: 3, 2: 4}
    # The key that was not text arrives as text; its value and the record's key are untouched.
    assert repaired.headers == (("\ufffd\ufffd", b"x"),)
    assert repaired.key == b"p"
