"""The dead-letter record: what a service could not process, with why and where it came from.

Every service publishes these on its own ``<service>.deadletter`` topic (see
``topics.dead_letter_topic``); operators read them (``carecoord dlq``). The
record keeps the original bytes, base64 (so it can be replayed after a fix),
and says where they were read (topic, partition, offset) and why they were
rejected. The runtime that writes them is ``carecoord_shared.messaging.deadletter``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pydantic import BaseModel


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
