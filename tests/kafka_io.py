"""Test helpers that talk to the real broker: publish raw bytes, read a topic back."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from carecoord_contracts import Envelope, Event
from carecoord_records.fetch import SafeFetch
from carecoord_records.raw_records import RawFetcher


async def publish_raw(
    bootstrap: str, topic: str, value: bytes, key: bytes | None = None, headers: dict[str, str] | None = None
) -> Any:
    """Publish and return the broker's record metadata (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        return await producer.send_and_wait(
            topic, value, key=key, headers=[(k, v.encode()) for k, v in (headers or {}).items()]
        )
    finally:
        await producer.stop()


async def publish_event(
    bootstrap: str, topic: str, event: Event, patient_id: uuid.UUID, producer: str = "patient-app"
) -> Envelope:
    envelope = Envelope.wrap(event, patient_id=patient_id, producer=producer)
    await publish_envelope(bootstrap, topic, envelope)
    return envelope


async def publish_envelope(bootstrap: str, topic: str, envelope: Envelope) -> None:
    await publish_raw(bootstrap, topic, envelope.model_dump_json().encode(), envelope.key, envelope.headers())


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record on the topic right now, in partition-then-offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records: list[Any] = []
        # Topics may hold records aiokafka cannot decode (the hostile-record tests write them).
        fetch = SafeFetch(consumer, RawFetcher({"bootstrap_servers": bootstrap}), max_records=500)
        try:
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                records.extend((await fetch.getmany(*partitions, timeout_ms=1000)).records)
        finally:
            await fetch.close()
        return records
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def events_for(
    bootstrap: str, topic: str, patient_id: uuid.UUID, event_type: str | None = None
) -> list[dict[str, Any]]:
    """The envelopes (as dicts) on a topic about one patient, optionally of one type."""
    out = []
    for record in await read_topic(bootstrap, topic):
        if record.key != str(patient_id).encode():
            continue
        envelope = json.loads(record.value)
        if event_type is None or envelope.get("type") == event_type:
            out.append(envelope)
    return out


async def group_caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether a consumer group has committed past everything now on the topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
        first = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
        # A partition the group never committed on is caught up only if nothing is on it: services
        # commit exactly past the records they handled, never a bare position.
        return all((committed[tp].offset if tp in committed else first[tp]) >= end[tp] for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()
