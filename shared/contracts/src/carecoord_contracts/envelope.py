"""The wire format every carecoord event travels in.

An envelope wraps one domain event's payload with the metadata that consumers
need to deduplicate (event id), route (type, version), order (patient key) and
trace causality (correlation and causation ids). It deliberately carries no PHI:
the patient key is the pseudonymous patient id minted by intake.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from .common import ProducerTimestamp

EVENT_TYPE_PATTERN = r"^[A-Z][A-Za-z0-9]{2,79}$"
SERVICE_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"


class Event(BaseModel):
    """Base class of every domain event payload.

    Subclasses set ``event_type`` and ``version``. Unknown fields are ignored so
    that an added optional field never breaks an older consumer; strings are
    bounded and floats must be finite, so hostile input fails validation.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        str_max_length=2000,
        allow_inf_nan=False,
    )

    event_type: ClassVar[str]
    version: ClassVar[int] = 1


class Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    event_id: uuid.UUID
    type: str = Field(pattern=EVENT_TYPE_PATTERN)
    version: int = Field(ge=1, le=1000)
    # The producer's clock, not a person's report: up to a day ahead of the consumer's clock
    # it is flagged on consumption (messaging.clock_skew), not refused. Refusing it beyond
    # CLOCK_SKEW dead-lettered every event of a producer whose clock ran ahead, with no retry.
    occurred_at: ProducerTimestamp
    producer: str = Field(pattern=SERVICE_PATTERN)
    patient_id: uuid.UUID
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        event: Event,
        *,
        patient_id: uuid.UUID,
        producer: str,
        cause: Envelope | None = None,
        correlation_id: uuid.UUID | None = None,
        occurred_at: datetime | None = None,
    ) -> Envelope:
        """Envelope a new event; a caused event inherits its cause's correlation id."""
        event_id = uuid.uuid4()
        if correlation_id is None:
            correlation_id = cause.correlation_id if cause else event_id
        return cls(
            event_id=event_id,
            type=event.event_type,
            version=event.version,
            occurred_at=occurred_at or datetime.now(UTC),
            producer=producer,
            patient_id=patient_id,
            correlation_id=correlation_id,
            causation_id=cause.event_id if cause else None,
            payload=event.model_dump(mode="json"),
        )

    @property
    def key(self) -> bytes:
        """Kafka key: the patient id, so one patient's events keep their order."""
        return str(self.patient_id).encode()

    def headers(self) -> dict[str, str]:
        """Kafka headers: routing metadata only, never payload content."""
        return routing_headers(str(self.event_id), self.type, str(self.version), self.producer)


def routing_headers(event_id: str, event_type: str, version: str, producer: str) -> dict[str, str]:
    """An event's Kafka headers (the outbox relay builds them from its columns, without the envelope)."""
    return {"event-id": event_id, "event-type": event_type, "event-version": version, "producer": producer}
