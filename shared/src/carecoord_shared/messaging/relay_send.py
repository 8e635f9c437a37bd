"""One relay pass's sends: each key's rows in one record batch, and what the broker made of them.

Why one explicit batch per key (and not a row per send, a chain per key, or
the idempotent producer), from aiokafka's producer:

- ``send()`` appends rows to the partition's open batch and the sender takes
  batches one at a time per partition (``Sender`` mutes a partition while its
  batch is in flight), but a batch that expires (``_can_retry`` is False once
  it is older than ``request_timeout_ms``) or fails non-retriably just fails,
  and the next batch of that partition goes out: a key whose rows straddled two
  batches lands later-before-earlier.
- A record batch is appended by the broker whole or not at all. So all rows of
  one key in a pass go into one ``create_batch()`` batch (``send_batch``, on
  the default partitioner's partition for the key, the one ``send()`` would
  choose), several keys may share it, and the next pass starts only when every
  batch of this one is settled. Whatever fails, a key's later rows are never
  on the log before its earlier ones: they were in the same batch, or in a
  later pass that re-sends the earlier ones first (a batch that timed out but
  landed after all is then a duplicate, and consumers keep the first copy).
- The common transaction writes 1-4 events of one patient: one batch, one
  round trip. Chaining a key's rows (send the next when the previous was
  acknowledged) costs a round trip per extra row on every pass; here it is the
  fallback only after a batch was refused, to find the exact row.
- The idempotent producer would refuse a batch after a gap, but in aiokafka a
  refused batch is fatal to the whole producer (OutOfOrderSequenceNumber
  escapes ``Sender._sender_routine`` and ``fail_all`` fails every pending
  batch of every key), which is also what a broker that lost its producer
  state answers (service.py): every key would stop for one bad row.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, TopicAuthorizationFailedError, UnknownTopicOrPartitionError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

Key = tuple[str, str]  # (topic, key): order holds per partition, so per topic and key


class TopicMissing(UnknownTopicOrPartitionError):  # type: ignore[misc]  # aiokafka ships no types: its errors are Any to mypy
    """The broker answered metadata and has no such topic (not: the broker did not answer)."""

    retriable = False


# What the broker says of a row or a topic that no retry changes, each one tried
# for real in the relay's tests. Anything else (broker away, leader moving,
# timeouts, an error not listed) is transient: the key is retried, never parked.
# A wrong "transient" costs retries, a wrong "permanent" a wait for the
# parked-key timer; neither reorders.
PERMANENT = (MessageSizeTooLargeError, TopicAuthorizationFailedError, TopicMissing)


class OutboxRow(Protocol):
    """An unsent outbox row as the relay selects it (relay.OutboxRelay._unsent)."""

    @property
    def id(self) -> int: ...
    @property
    def event_id(self) -> uuid.UUID: ...
    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def body(self) -> str: ...  # the envelope as PostgreSQL renders its JSON
    @property
    def version(self) -> str: ...
    @property
    def producer(self) -> str: ...
    @property
    def trace_context(self) -> dict[str, str]: ...


class BatchBuilder(Protocol):
    """What the relay uses of aiokafka's ``BatchBuilder`` (``producer.create_batch()``)."""

    def append(
        self, *, timestamp: int | None, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> object | None: ...  # None when the record does not fit (the builder is then closed)

    def size(self) -> int: ...


@dataclass(frozen=True)
class Record:
    row: OutboxRow
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class Outcome:
    acked: list[OutboxRow] = field(default_factory=list)
    parked: dict[Key, tuple[OutboxRow, str]] = field(default_factory=dict)  # key -> (row refused, error class)
    transient: dict[Key, str] = field(default_factory=dict)  # key -> error class


class PassSender:
    """Sends one pass's records through ``producer``; see the module docstring."""

    def __init__(self, producer: AIOKafkaProducer, max_batch_bytes: int, metadata_timeout_s: float) -> None:
        self._producer = producer
        self._max_batch_bytes = max_batch_bytes
        self._metadata_timeout_s = metadata_timeout_s
        self._partitioner = DefaultPartitioner()

    async def send(self, records: Sequence[Record]) -> Outcome:
        outcome = Outcome()
        groups: dict[Key, list[Record]] = {}
        for record in records:
            groups.setdefault((record.row.topic, record.row.key), []).append(record)
        by_partition: dict[tuple[str, int], list[list[Record]]] = {}
        for topic in {topic for topic, _key in groups}:
            try:
                partitions = sorted(await self._partitions(topic))
            except Exception as exc:
                for key, group in groups.items():
                    if key[0] == topic:
                        _settle(outcome, key, group[0].row, exc)
                continue
            for key, group in groups.items():
                if key[0] == topic:
                    partition = self._partitioner(key[1].encode(), partitions, partitions)
                    by_partition.setdefault((topic, partition), []).append(group)
        await asyncio.gather(*(self._send_partition(tp, gs, outcome) for tp, gs in by_partition.items()))
        return outcome

    async def _partitions(self, topic: str) -> set[int]:
        client = self._producer.client
        known = client.cluster.partitions_for_topic(topic)
        if known:
            return set(known)
        client.add_topic(topic)
        try:
            answered = await asyncio.wait_for(client.force_metadata_update(), self._metadata_timeout_s)
        except TimeoutError:
            answered = False
        known = client.cluster.partitions_for_topic(topic)
        if known:
            return set(known)
        if not answered:
            raise ConnectionError("no broker answered the metadata request")
        if topic in client.cluster.unauthorized_topics:
            raise TopicAuthorizationFailedError(topic)
        raise TopicMissing()

    async def _send_partition(self, tp: tuple[str, int], groups: list[list[Record]], outcome: Outcome) -> None:
        # Batches of one partition are queued one after another (aiokafka's add_batch
        # waits for the previous one to be taken); partitions go in parallel.
        sent: list[tuple[list[list[Record]], Awaitable[object] | BaseException]] = []
        for batch_groups, builder in self._pack(groups):
            try:
                sent.append((batch_groups, await self._producer.send_batch(builder, tp[0], partition=tp[1])))
            except Exception as exc:
                sent.append((batch_groups, exc))
        for batch_groups, future in sent:
            error = future if isinstance(future, BaseException) else await _failure(future)
            if error is None:
                outcome.acked += [r.row for group in batch_groups for r in group]
            elif isinstance(error, PERMANENT) and not _single_row(batch_groups):
                # Which row? Each key's rows one at a time, in parallel over keys.
                await asyncio.gather(*(self._chain(tp, group, outcome) for group in batch_groups))
            else:
                for group in batch_groups:
                    _settle(outcome, (tp[0], group[0].row.key), group[0].row, error)

    async def _chain(self, tp: tuple[str, int], group: list[Record], outcome: Outcome) -> None:
        for record in group:
            builder = self._producer.create_batch()
            _append(builder, record)
            try:
                error = await _failure(await self._producer.send_batch(builder, tp[0], partition=tp[1]))
            except Exception as exc:
                error = exc
            if error is not None:
                _settle(outcome, (tp[0], record.row.key), record.row, error)
                return
            outcome.acked.append(record.row)

    def _pack(self, groups: list[list[Record]]) -> list[tuple[list[list[Record]], BatchBuilder]]:
        """Whole keys into batches of up to max_batch_bytes; a key that does not fit
        a batch of its own sends the rows that fit and leaves the rest to the next pass."""
        batches: list[tuple[list[list[Record]], BatchBuilder]] = []
        size = self._max_batch_bytes
        for group in groups:
            need = sum(_estimate(r) for r in group)
            if not batches or size + need > self._max_batch_bytes:
                batches.append(([], self._producer.create_batch()))
                size = 0
            batch_groups, builder = batches[-1]
            # Bound now (not a closure over the loop's `builder`); _take_while calls it before the loop moves on anyway.
            taken = _take_while(group, functools.partial(_append, builder))
            if taken:
                batch_groups.append(taken)
            # A refused append closed the builder: the next key starts a new batch.
            size = builder.size() if len(taken) == len(group) else self._max_batch_bytes
        return [(g, b) for g, b in batches if g]


def _settle(outcome: Outcome, key: Key, row: OutboxRow, error: BaseException) -> None:
    # A batch that expired on UnknownTopicOrPartition (aiokafka retries it as stale
    # metadata) may be for a deleted topic: transient this once, and the next pass
    # asks the broker's metadata, which tells a missing topic (TopicMissing) apart.
    if isinstance(error, PERMANENT):
        outcome.parked[key] = (row, type(error).__name__)
    else:
        outcome.transient[key] = type(error).__name__


async def _failure(future: Awaitable[object]) -> BaseException | None:
    try:
        await future
    except Exception as exc:
        return exc
    return None


def _single_row(groups: list[list[Record]]) -> bool:
    return len(groups) == 1 and len(groups[0]) == 1


def _append(builder: BatchBuilder, record: Record) -> bool:
    return (
        builder.append(timestamp=None, key=record.row.key.encode(), value=record.value, headers=record.headers)
        is not None
    )


def _estimate(record: Record) -> int:
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(record.row.key.encode(), record.value, record.headers))


def _take_while(items: list[Record], accept: Callable[[Record], bool]) -> list[Record]:
    taken = []
    for item in items:
        if not accept(item):
            break
        taken.append(item)
    return taken
