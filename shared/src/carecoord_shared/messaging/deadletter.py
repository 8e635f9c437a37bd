"""Dead letters: what a service could not process, with why and where it came from.

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
from pydantic import BaseModel

from ..contracts import Envelope
from ..contracts.topics import dead_letter_topic
from ..telemetry import meter
from .tracing import publish_span

log = structlog.get_logger("carecoord.deadletter")

# The broker refuses records above 1 MiB and base64 grows the bytes by a third:
# a larger original is kept truncated (and marked so), or the letter itself
# could never be published and the consumer would retry the message forever.
MAX_KEPT_ORIGINAL_BYTES = 512 * 1024

# publish(topic, value, key, headers) and wait for the broker's acknowledgement.
PublishAndWait = Callable[[str, bytes, bytes | None, dict[str, str]], Awaitable[Any]]


class DeadLetter(BaseModel):
    reason: str
    detail: dict[str, Any]
    service: str
    original_topic: str
    original_partition: int
    original_offset: int
    original_key_b64: str | None
    original_value_b64: str
    # Set when the original was too large to keep whole: it cannot be replayed from here.
    original_truncated: bool = False
    original_size: int | None = None
    event_id: str | None = None
    event_type: str | None = None
    dead_lettered_at: datetime

    def original_value(self) -> bytes:
        return base64.b64decode(self.original_value_b64)


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
        headers = {
            "dead-letter-reason": reason,
            "original-topic": record.topic,
            "original-partition": str(record.partition),
            "original-offset": str(record.offset),
        }
        # No key on the span: a rejected record's key may be anything its sender chose.
        with publish_span(self.topic, None, letter.event_id or "", letter.event_type or "unknown", None) as trace_headers:
            await self._publish(self.topic, letter.model_dump_json().encode(), record.key, headers | trace_headers)
        self._count.add(1, {"reason": reason})
        log.warning(
            "event.dead_lettered",
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_type=letter.event_type,
            event_id=letter.event_id,
        )
