"""Dead letters: what a service could not process, with why and where it came from.

This is the runtime that writes them; the record itself (``DeadLetter``) is
published in ``carecoord_contracts.deadletter``.

The dead letter keeps the original bytes (so it can be replayed after a fix)
and says where they were read (topic, partition, offset) and why they were
rejected. The Kafka key stays the original key; headers carry only the reason
code and routing metadata, never content.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import ConsumerRecord

from carecoord_contracts import Envelope
from carecoord_contracts.deadletter import DeadLetter
from carecoord_contracts.topics import dead_letter_topic

from ..telemetry import meter
from .tracing import publish_span

log = structlog.get_logger("carecoord.deadletter")

# The broker refuses records above 1 MiB and base64 grows the bytes by a third:
# a larger original is kept truncated (and marked so), or the letter itself
# could never be published and the consumer would retry the message forever.
MAX_KEPT_ORIGINAL_BYTES = 512 * 1024

# The reason of a record that could not be decoded (header keys, CRC): no bytes, only where it is.
UNDECODABLE = "undecodable_record"

# publish(topic, value, key, headers) and wait for the broker's acknowledgement.
PublishAndWait = Callable[[str, bytes, bytes | None, dict[str, str]], Awaitable[Any]]


class DeadLetterer:
    def __init__(self, service: str, publish_and_wait: PublishAndWait) -> None:
        self.service = service
        self.topic = dead_letter_topic(service).name
        self._publish = publish_and_wait
        self._count = meter().create_counter("carecoord.deadletters", description="Messages dead-lettered, by reason")

    async def send(
        self, record: ConsumerRecord, *, reason: str, detail: dict[str, Any], envelope: Envelope | None = None
    ) -> None:
        value = record.value or b""
        letter = DeadLetter(
            reason=reason,
            detail=detail,
            service=self.service,
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_key_b64=base64.b64encode(record.key).decode() if record.key else None,
            original_value_b64=base64.b64encode(value[:MAX_KEPT_ORIGINAL_BYTES]).decode(),
            original_truncated=len(value) > MAX_KEPT_ORIGINAL_BYTES,
            original_size=len(value),
            event_id=str(envelope.event_id) if envelope else None,
            event_type=envelope.type if envelope else None,
            dead_lettered_at=datetime.now(UTC),
        )
        await self._publish_letter(letter, record.key)

    async def send_undecodable(
        self, topic: str, partition: int, offset: int, *, raw: bytes, detail: dict[str, Any]
    ) -> None:
        """A batch whose bytes are broken: kept by its coordinates and its raw bytes (never replayable).

        The batch stays on the original topic until retention deletes it, where an
        operator reads it by topic, partition and offset (kcat -o).
        """
        detail = {
            **detail,
            "raw_batch_b64": base64.b64encode(raw[:MAX_KEPT_ORIGINAL_BYTES]).decode(),
            "raw_batch_size": len(raw),
        }
        letter = DeadLetter(
            reason=UNDECODABLE,
            detail=detail,
            service=self.service,
            original_topic=topic,
            original_partition=partition,
            original_offset=offset,
            original_key_b64=None,
            original_value_b64="",
            original_truncated=True,
            original_size=None,
            dead_lettered_at=datetime.now(UTC),
        )
        await self._publish_letter(letter, None)

    async def _publish_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        headers = {
            "dead-letter-reason": letter.reason,
            "original-topic": letter.original_topic,
            "original-partition": str(letter.original_partition),
            "original-offset": str(letter.original_offset),
        }
        # No key on the span: a rejected record's key may be anything its sender chose.
        with publish_span(
            self.topic, None, letter.event_id or "", letter.event_type or "unknown", None
        ) as trace_headers:
            await self._publish(self.topic, letter.model_dump_json().encode(), key, headers | trace_headers)
        self._count.add(1, {"reason": letter.reason})
        log.warning(
            "event.dead_lettered",
            reason=letter.reason,
            topic=letter.original_topic,
            partition=letter.original_partition,
            offset=letter.original_offset,
            event_type=letter.event_type,
            event_id=letter.event_id,
        )
