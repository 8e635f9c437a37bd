"""Reading a partition's record batches ourselves, leniently, when aiokafka cannot.

aiokafka decodes every record of a batch strictly (header keys as UTF-8) and,
to reach an offset inside a batch, decodes the records before it too: one bad
header key makes that record *and every later record of its batch*
unreadable through the client, whichever offset one seeks to. So for a
partition the client cannot read, the consumer fetches the raw bytes (one
Fetch request of its own) and decodes them here by the record format
(magic 2, the only one Kafka 4 stores), keeping what the format allows
(header keys that are not text are repaired like header values). Only a batch
whose own bytes are broken (CRC mismatch, truncated or malformed) is
undecodable; it is reported by its offset range, with as many of its bytes as
a dead letter can carry.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaClient, ConsumerRecord, TopicPartition
from aiokafka.codec import gzip_decode, lz4_decode, snappy_decode, zstd_decode
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.util import calc_crc32c, decode_varint

# baseOffset, batchLength | partitionLeaderEpoch, magic, crc | attributes ... recordsCount
_PREFIX = struct.Struct(">qi")
_HEADER = struct.Struct(">ibI")
_AFTER_CRC = struct.Struct(">hiqqqhii")
_DECOMPRESS = {1: gzip_decode, 2: snappy_decode, 3: lz4_decode, 4: zstd_decode}
_CONTROL = 0x20
_LOG_APPEND_TIME = 0x08


@dataclass(frozen=True)
class BrokenBatch:
    """A batch whose bytes are not a valid record batch: where it is and what is wrong."""

    first_offset: int
    last_offset: int
    problem: str
    raw: bytes


@dataclass
class Parsed:
    records: list[ConsumerRecord]
    broken: list[BrokenBatch]
    # Where reading this partition goes on after what was parsed (past skipped control batches too).
    next_offset: int


def parse(tp: TopicPartition, data: bytes, from_offset: int) -> Parsed:
    """Every record at or after ``from_offset`` in the fetched bytes, and any broken batch."""
    out = Parsed([], [], from_offset)
    for first, last, body, raw in _batches(data):
        if last < from_offset:
            continue
        if isinstance(body, str):
            out.broken.append(BrokenBatch(max(first, from_offset), last, body, raw))
            out.next_offset = last + 1
            # A broken batch ends the read: what follows is read again once it is dealt with.
            break
        try:
            out.records.extend(r for r in _records(tp, first, body) if r.offset >= from_offset)
        except (ValueError, IndexError, struct.error) as exc:
            out.broken.append(
                BrokenBatch(max(first, from_offset), last, f"malformed record: {type(exc).__name__}", raw)
            )
            out.next_offset = last + 1
            break
        out.next_offset = last + 1
    return out


def _batches(data: bytes) -> Iterator[tuple[int, int, Any, bytes]]:
    """(first offset, last offset, records or a problem, the batch's bytes) per complete batch."""
    pos = 0
    while pos + _PREFIX.size <= len(data):
        base, length = _PREFIX.unpack_from(data, pos)
        end = pos + _PREFIX.size + length
        if end > len(data):
            return  # the broker cut the last batch at the fetch size: it comes whole next time
        yield base, *_batch(base, memoryview(data)[pos + _PREFIX.size : end]), data[pos:end]
        pos = end


def _batch(base: int, view: memoryview) -> tuple[int, Any]:
    if len(view) < _HEADER.size + _AFTER_CRC.size:
        return base, "batch shorter than its header"
    _epoch, magic, crc = _HEADER.unpack_from(view, 0)
    attributes, last_delta, base_ts, max_ts, _pid, _pepoch, _seq, count = _AFTER_CRC.unpack_from(view, _HEADER.size)
    last = base + last_delta
    if magic != 2:
        return last, f"record format {magic}, not 2"
    if calc_crc32c(view[_HEADER.size :]) != crc:
        return last, "CRC mismatch"
    if attributes & _CONTROL:
        return last, ((), attributes, base_ts, max_ts, 0)  # transaction markers: no records for anyone
    records = bytes(view[_HEADER.size + _AFTER_CRC.size :])
    codec = attributes & 0x07
    if codec:
        if codec not in _DECOMPRESS:
            return last, f"unknown compression {codec}"
        try:
            records = _DECOMPRESS[codec](records)
        except Exception as exc:
            return last, f"cannot decompress: {type(exc).__name__}"
    return last, (records, attributes, base_ts, max_ts, count)


def _records(tp: TopicPartition, base: int, body: tuple[Any, ...]) -> Iterator[ConsumerRecord]:
    data, attributes, base_ts, max_ts, count = body
    log_append = bool(attributes & _LOG_APPEND_TIME)
    pos = 0
    for _ in range(count):
        length, pos = decode_varint(data, pos)
        end = pos + length
        if length < 0 or end > len(data):
            raise ValueError("record length out of bounds")
        pos += 1  # record attributes: unused
        ts_delta, pos = decode_varint(data, pos)
        offset_delta, pos = decode_varint(data, pos)
        key, pos = _sized(data, pos)
        value, pos = _sized(data, pos)
        header_count, pos = decode_varint(data, pos)
        if header_count < 0:
            raise ValueError("negative header count")
        headers = []
        for _h in range(header_count):
            raw_key, pos = _sized(data, pos)
            header_value, pos = _sized(data, pos)
            headers.append(((raw_key or b"").decode("utf-8", errors="replace"), header_value))
        if pos != end:
            raise ValueError("record length does not match its fields")
        yield ConsumerRecord(
            tp.topic,
            tp.partition,
            base + offset_delta,
            max_ts if log_append else base_ts + ts_delta,
            int(log_append),
            key,
            value,
            None,
            len(key) if key is not None else -1,
            len(value) if value is not None else -1,
            tuple(headers),
        )


def _sized(data: bytes, pos: int) -> tuple[bytes | None, int]:
    size, pos = decode_varint(data, pos)
    if size < 0:
        return None, pos
    if pos + size > len(data):
        raise ValueError("field longer than its record")
    return data[pos : pos + size], pos + size


class RawFetcher:
    """One Fetch request for one partition, through a client of its own (the consumer's is private)."""

    def __init__(self, client_options: dict[str, Any], max_bytes: int = 1024 * 1024) -> None:
        self._options = client_options
        self._max_bytes = max_bytes
        self._client: AIOKafkaClient | None = None

    async def read(self, tp: TopicPartition, offset: int) -> Parsed:
        if self._client is None:
            client = AIOKafkaClient(**self._options)
            await client.bootstrap()
            self._client = client
        client = self._client
        metadata = await client.fetch_all_metadata()
        leader = metadata.leader_for_partition(tp)
        if leader is None or leader < 0:
            raise KafkaError(f"no leader for {tp.topic}[{tp.partition}]")
        request = FetchRequest(0, 1, self._max_bytes, 0, [(tp.topic, [(tp.partition, offset, self._max_bytes)])])
        response = await client.send(leader, request)
        for _topic, partitions in response.topics:
            for partition, error_code, _highwater, *part_data in partitions:
                if partition != tp.partition:
                    continue
                if error_code:
                    raise for_code(error_code)(f"{tp.topic}[{tp.partition}]")
                return parse(tp, bytes(part_data[-1] or b""), offset)
        return Parsed([], [], offset)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
