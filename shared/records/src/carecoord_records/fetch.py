"""Fetching records so that one record the client cannot decode costs nothing else.

aiokafka decodes each record while ``getmany`` collects a fetch (header keys
strictly as UTF-8). When one record fails, ``getmany`` raises after it has
already advanced the position of every partition it drained before, and what
it drained is gone; the failing partition stays put and fails the same way on
every later fetch, taking the other partitions' records with it each time, and
the next commit would skip what was lost.

``SafeFetch`` wraps the consumer so that this cannot happen:

1. Before each fetch it notes the position of every partition it will read.
2. If the fetch raises while decoding, every partition is sought back to that
   position: nothing drained is lost.
3. Then each partition with records waiting is fetched on its own. The good
   ones come back as usual. The failing one is read by :mod:`.raw_records`
   (its own Fetch request, decoded leniently), because through aiokafka the
   bad record and every later record of its batch are out of reach: its
   records come back with unreadable header keys repaired.
4. A batch whose own bytes are broken (CRC, truncation) is given up on after
   ``attempts`` reads in a row: it comes back as an :class:`Undecodable` for
   the caller to dead-letter before it commits anything past it.

Errors of the broker or the connection (``KafkaError`` other than a corrupt
record) are no record's fault: positions are sought back and the error is
raised for the caller's retry loop, never skipped over.

Header values that are not UTF-8 (or null) are replaced by readable text:
they are routing metadata, never the content that is validated and kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    ConsumerStoppedError,
    CorruptRecordException,
    IllegalOperation,
    IllegalStateError,
    KafkaError,
)

from .raw_records import RawFetcher

log = structlog.get_logger("carecoord.fetch")

# How long an isolating fetch of one partition waits for its records (they were just fetched once).
ISOLATE_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Undecodable:
    """A batch given up on: where it is, what is wrong, and its bytes."""

    topic: str
    partition: int
    offset: int
    last_offset: int
    error: str
    attempts: int
    raw: bytes = b""


@dataclass
class Fetched:
    records: list[ConsumerRecord]
    undecodable: list[Undecodable]


def _is_broker_error(exc: BaseException) -> bool:
    return isinstance(exc, KafkaError) and not isinstance(exc, CorruptRecordException)


class SafeFetch:
    def __init__(self, consumer: AIOKafkaConsumer, raw: RawFetcher, *, max_records: int, attempts: int = 3) -> None:
        self._consumer = consumer
        self._raw = raw
        self._max_records = max_records
        self._attempts = attempts
        # (partition, first offset) of a broken batch -> reads in a row that found it broken.
        self._failures: dict[tuple[TopicPartition, int], int] = {}
        # Partitions whose safe position must come from the group's commit (see _settle_unknown).
        self._unknown: set[TopicPartition] = set()

    async def getmany(self, *partitions: TopicPartition, timeout_ms: int) -> Fetched:
        """Up to ``max_records`` records (partition order kept), and any batches given up on."""
        if self._unknown:
            await self._settle_unknown()
        before = await self._positions(partitions or self._consumer.assignment())
        try:
            batches = await self._consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=self._max_records)
        except ConsumerStoppedError:
            raise
        except Exception as exc:
            self._rewind(before)
            self._unknown |= self._consumer.assignment() - set(before)
            await self._settle_unknown()
            if _is_broker_error(exc):
                raise
            log.warning("fetch.undecodable", error=type(exc).__name__, partitions=len(before))
            return await self._isolate(before)
        return Fetched([readable_headers(r) for batch in batches.values() for r in batch], [])

    async def close(self) -> None:
        await self._raw.close()

    async def _positions(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        positions = {}
        for tp in partitions:
            try:
                positions[tp] = await self._consumer.position(tp)
            except IllegalStateError:
                continue  # revoked meanwhile: not ours to read
        return positions

    async def _settle_unknown(self) -> None:
        """Partitions assigned while a fetch ran (a rebalance) have no noted position to go back
        to, and the fetch that raised may have moved them past records it then dropped (found by
        the fault suite: a rejoin after a network stall, then a hostile record, lost six reports
        to dosing). Back to the group's last commit: all before it was handled. Until that is
        known (the broker away) nothing is fetched: the error goes to the caller's retry."""
        for tp in sorted(self._unknown):
            if tp in self._consumer.assignment():
                try:
                    committed = await self._consumer.committed(tp)
                except IllegalOperation:  # no group (the CLI reads by hand): from the start
                    committed = None
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
            self._unknown.discard(tp)

    def _rewind(self, positions: dict[TopicPartition, int]) -> None:
        for tp, offset in positions.items():
            try:
                self._consumer.seek(tp, offset)
            except (AssertionError, IllegalStateError):
                pass  # revoked meanwhile: its next owner starts from the committed offset

    async def _isolate(self, before: dict[TopicPartition, int]) -> Fetched:
        """Each partition on its own: through the client where it can, raw where it cannot.

        If anything raises part way (the broker going away while partitions are read one by
        one), every partition goes back to where this fetch began: the records already
        collected here are dropped with the exception, so their positions must not stay past
        them (found by the fault suite: a broker restart in the middle lost intake's events
        to billing, and the next commit went past them).
        """
        try:
            return await self._isolate_each(before)
        except BaseException:
            self._rewind(before)
            self._unknown |= self._consumer.assignment() - set(before)  # settled before the next fetch
            raise

    async def _isolate_each(self, before: dict[TopicPartition, int]) -> Fetched:
        out = Fetched([], [])
        for tp, start in sorted(before.items()):
            highwater = self._consumer.highwater(tp)
            budget = self._max_records - len(out.records)
            if highwater is None or start >= highwater or budget <= 0:
                continue  # nothing fetched there yet, or nothing waits: the next poll gets it
            try:
                got = await self._consumer.getmany(tp, timeout_ms=ISOLATE_TIMEOUT_MS, max_records=budget)
            except ConsumerStoppedError:
                raise
            except Exception as exc:
                self._rewind({tp: start})
                if _is_broker_error(exc):
                    raise
                await self._read_raw(tp, start, budget, out)
                continue
            out.records.extend(readable_headers(r) for r in got.get(tp, ()))
        return out

    async def _read_raw(self, tp: TopicPartition, start: int, budget: int, out: Fetched) -> None:
        parsed = await self._raw.read(tp, start)
        records = parsed.records[:budget]
        repaired = sum(1 for r in records if any("\ufffd" in key for key, _v in r.headers))
        log.warning(
            "fetch.read_raw",
            topic=tp.topic,
            partition=tp.partition,
            offset=start,
            records=len(records),
            repaired_header_keys=repaired,
            broken=len(parsed.broken),
        )
        out.records.extend(readable_headers(r) for r in records)
        if len(records) < len(parsed.records):
            self._consumer.seek(tp, records[-1].offset + 1)  # the rest comes with the next poll
            return
        next_offset = parsed.next_offset
        for broken in parsed.broken:
            key = (tp, broken.first_offset)
            attempts = self._failures.pop(key, 0) + 1
            if attempts < self._attempts:
                self._failures[key] = attempts
                next_offset = broken.first_offset  # read it again next time
                continue
            out.undecodable.append(
                Undecodable(
                    tp.topic,
                    tp.partition,
                    broken.first_offset,
                    broken.last_offset,
                    broken.problem,
                    attempts,
                    broken.raw,
                )
            )
        self._consumer.seek(tp, next_offset)


def readable_headers(record: ConsumerRecord) -> ConsumerRecord:
    """The record, with any header value that is not UTF-8 text (or is null) replaced.

    Header values are routing metadata only (the body is what is validated and
    dead-lettered), so an unreadable one is replaced rather than allowed to
    cost the record: every reader may then decode them as text.
    """
    try:
        for _key, value in record.headers:
            value.decode()
        return record
    except (AttributeError, UnicodeDecodeError):
        headers = tuple(
            (key, value.decode(errors="replace").encode() if value is not None else b"")
            for key, value in record.headers
        )
        return dataclasses.replace(record, headers=headers)
