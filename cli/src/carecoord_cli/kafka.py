"""Reading and writing the broker as an operator: whole topics, offsets, group positions.

The CLI never joins a consumer group (it assigns partitions by hand and
commits nothing), so looking never moves a service's offsets.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from carecoord_records.fetch import SafeFetch, Undecodable
from carecoord_records.raw_records import RawFetcher

from .errors import StackUnavailable

# Records read per fetch when reading whole topics.
_READ_BATCH = 500


class Broker:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        options: dict[str, Any] = {"bootstrap_servers": bootstrap, "request_timeout_ms": 10_000}
        self._consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
        self._admin = AIOKafkaAdminClient(**options)
        self._producer: AIOKafkaProducer | None = None
        # Reads what aiokafka cannot decode (header keys that are not text): another team's
        # producer may write anything the record format allows, and looking must not crash.
        self._fetch = SafeFetch(self._consumer, RawFetcher(options), max_records=_READ_BATCH)
        # Batches whose bytes are broken, met while reading: reported, never a traceback.
        self.unreadable: list[Undecodable] = []

    async def __aenter__(self) -> Broker:
        try:
            await self._consumer.start()
            await self._admin.start()
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            await self._close()
            raise StackUnavailable(f"Kafka is not reachable at {self.bootstrap}.") from exc
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self._close()
        for bad in self.unreadable:
            sys.stderr.write(
                f"warning: {bad.topic}[{bad.partition}] offsets {bad.offset}-{bad.last_offset} could not be read "
                f"({bad.error}); shown without them\n"
            )

    async def _close(self) -> None:
        for close in (
            self._fetch.close,
            self._consumer.stop,
            self._admin.close,
            *([self._producer.stop] if self._producer else []),
        ):
            # Best effort: one client failing to close must not leave the others open.
            with contextlib.suppress(Exception):
                await close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        found = self._consumer.partitions_for_topic(topic)
        if not found:
            await self._consumer._client.force_metadata_update()
            found = self._consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(found)]

    async def offsets(self, topics: Iterable[str]) -> dict[TopicPartition, tuple[int, int]]:
        """(first, end) offset of every partition of the topics."""
        partitions = [tp for topic in topics for tp in await self.partitions(topic)]
        if not partitions:
            return {}
        first = await self._consumer.beginning_offsets(partitions)
        end = await self._consumer.end_offsets(partitions)
        return {tp: (first[tp], end[tp]) for tp in partitions}

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        return {tp: meta.offset for tp, meta in (await self._admin.list_consumer_group_offsets(group)).items()}

    async def records(self, topics: Iterable[str]) -> list[ConsumerRecord]:
        """Every record now on the topics, in topic, partition, offset order."""
        bounds = {tp: end for tp, (first, end) in (await self.offsets(topics)).items() if end > first}
        if not bounds:
            return []
        self._consumer.assign(list(bounds))
        await self._consumer.seek_to_beginning(*bounds)
        records: list[ConsumerRecord] = []
        while [tp for tp, end in bounds.items() if await self._consumer.position(tp) < end]:
            fetched = await self._fetch.getmany(*bounds, timeout_ms=1000)
            records.extend(r for r in fetched.records if r.offset < bounds[TopicPartition(r.topic, r.partition)])
            self.unreadable.extend(fetched.undecodable)
        self._consumer.unsubscribe()
        return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))

    async def publish(
        self, topic: str, value: bytes, *, key: bytes | None, partition: int | None, headers: dict[str, str]
    ) -> Any:
        """Publish and wait for the broker's acknowledgement; returns its record metadata."""
        if self._producer is None:
            self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
            await self._producer.start()
        return await self._producer.send_and_wait(
            topic, value, key=key, partition=partition, headers=[(k, v.encode()) for k, v in headers.items()]
        )


def header(record: ConsumerRecord, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode(errors="replace") if value is not None else None
    return None
