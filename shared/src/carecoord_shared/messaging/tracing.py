"""Kafka spans: one CONSUMER span per event handled, one PRODUCER span per event published.

Each event's span is parented on the trace context in its own headers, also
when it arrives in a batch with others, so one side-effect report is one trace
across every service it reaches: HTTP request -> outbox row -> publish span ->
the next service's consume span -> its outbox rows -> ... FastStream's
middleware cannot do this for a batch subscriber (it opens one new trace per
batch, linked to the messages), which is why the services make these spans
themselves. Attributes follow the OpenTelemetry messaging conventions and name
no person: ids, types, topics and offsets only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from aiokafka import ConsumerRecord
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from ..telemetry import tracer


def consume_span(record: ConsumerRecord, group: str) -> trace.Span:
    """Started, not current: the caller makes it current around the event's work (trace.use_span)."""
    carrier = {k: (v or b"").decode(errors="replace") for k, v in record.headers or ()}
    return tracer().start_span(
        f"process {record.topic}",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.kafka.message.key": _patient_key(record.key),
            "messaging.consumer.group.name": group,
        },
    )


def _patient_key(key: bytes | None) -> str:
    """The key when it is a patient's id (opaque, which the PHI policy allows); anything else is not recorded."""
    try:
        return str(uuid.UUID((key or b"").decode()))
    except ValueError:
        return ""


@contextmanager
def publish_span(
    topic: str, key: str | None, event_id: str, event_type: str, parent: Mapping[str, str] | None
) -> Iterator[dict[str, str]]:
    """A PRODUCER span under ``parent`` (the trace context an outbox row kept; None: the current span).

    Yields the headers that carry it to the consumer."""
    token = otel_context.attach(propagate.extract(dict(parent))) if parent is not None else None
    try:
        with tracer().start_as_current_span(
            f"publish {topic}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": event_id,
                "carecoord.event.type": event_type,
            },
        ) as span:
            if key is not None:
                span.set_attribute("messaging.kafka.message.key", key)
            headers: dict[str, str] = {}
            propagate.inject(headers)
            yield headers
    finally:
        if token is not None:
            otel_context.detach(token)
