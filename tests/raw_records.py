"""A hostile producer at the protocol level: record batches written byte by byte.

aiokafka's producer only writes what a well-behaved client writes (header keys
are text, for one). Other teams' producers, kcat and broken clients write
anything the record format allows, so the tests build Kafka's record batch
(magic 2) themselves and send it in a plain ProduceRequest: header keys that
are not UTF-8, null values, binary keys, thousands of headers.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.errors import for_code
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c, encode_varint


@dataclass(frozen=True)
class RawRecord:
    key: bytes | None
    value: bytes | None
    # (key, value): both raw bytes, nothing checked.
    headers: list[tuple[bytes, bytes | None]] = field(default_factory=list)


def _varint(value: int) -> bytes:
    out = bytearray()
    encode_varint(value, out.append)  # zig-zag, as the record format wants
    return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _record(offset_delta: int, record: RawRecord) -> bytes:
    body = b"".join(
        [
            b"\x00",  # attributes
            _varint(0),  # timestamp delta
            _varint(offset_delta),
            _sized(record.key),
            _sized(record.value),
            _varint(len(record.headers)),
            *(_sized(k) + _sized(v) for k, v in record.headers),
        ]
    )
    return _varint(len(body)) + body


def record_batch(records: list[RawRecord], *, base_offset: int = 0, attributes: int = 0, gzip: bool = False) -> bytes:
    """One record batch (magic 2) holding the records in order (gzip-compressed if asked)."""
    now = int(time.time() * 1000)
    body = b"".join(_record(i, r) for i, r in enumerate(records))
    if gzip:
        body, attributes = zlib_gzip(body), attributes | 1
    after_crc = struct.pack(">hiqqqhii", attributes, len(records) - 1, now, now, -1, -1, -1, len(records)) + body
    crc = calc_crc32c(after_crc)
    # partition leader epoch, magic, crc, then the part the crc covers
    tail = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", base_offset, len(tail)) + tail


def zlib_gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


async def produce_raw(bootstrap: str, topic: str, partition: int, records: list[RawRecord]) -> int:
    """Append the records to one partition (acks=all); returns the offset of the first."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        deadline = time.monotonic() + 15
        while True:
            leader = await _leader(client, TopicPartition(topic, partition))
            request = ProduceRequest(
                transactional_id=None,
                required_acks=-1,
                timeout=10_000,
                topics=[(topic, [(partition, record_batch(records))])],
            )
            response = await client.send(leader, request)
            [(_topic, [(_partition, error_code, offset, *_rest)])] = response.topics
            if not error_code:
                return int(offset)
            error = for_code(error_code)(f"{topic}[{partition}]")
            # A topic created a moment ago moves its leadership about at first.
            if not error.retriable or time.monotonic() > deadline:
                raise error
            await asyncio.sleep(0.2)
    finally:
        await client.close()


async def _leader(client: AIOKafkaClient, tp: TopicPartition, timeout: float = 10.0) -> int:
    """The partition's leader; a topic created a moment ago may not have elected one yet."""
    deadline = time.monotonic() + timeout
    while (leader := (await client.fetch_all_metadata()).leader_for_partition(tp)) in (None, -1):
        if time.monotonic() > deadline:
            raise LookupError(f"no leader for {tp.topic}[{tp.partition}] within {timeout:.0f}s: does the topic exist?")
        await asyncio.sleep(0.1)
    return int(leader)
