"""The PHI policy on spans (RedactingSpanExporter): what it changes and what it passes on untouched."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from carecoord_shared.privacy import REDACTED
from carecoord_shared.telemetry import RedactingSpanExporter


class _Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += spans
        return SpanExportResult.SUCCESS


def _exported(**attributes: object) -> ReadableSpan:
    inner = _Collect()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(inner)))
    with provider.get_tracer("t").start_as_current_span("s", attributes=attributes) as span:  # type: ignore[arg-type]
        if "fail" in attributes:
            span.record_exception(ValueError("Key (email)=(someone@example.org) already exists"))
            span.set_status(
                Status(StatusCode.ERROR, "IntegrityError: Key (email)=(someone@example.org) already exists")
            )
    [out] = inner.spans
    return out


def test_phi_named_attributes_and_exception_texts_are_redacted() -> None:
    span = _exported(
        **{"db.statement": "SELECT 1", "patient.email": "someone@example.org", "note": "felt dizzy", "fail": True}
    )
    assert span.attributes["patient.email"] == REDACTED and span.attributes["note"] == REDACTED
    assert span.attributes["db.statement"] == "SELECT 1"
    [event] = span.events
    assert event.attributes["exception.message"] == REDACTED
    assert "someone@example.org" not in event.attributes["exception.stacktrace"]
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "IntegrityError")


def test_a_span_with_nothing_to_redact_is_passed_on_as_it_is() -> None:
    span = _exported(**{"messaging.destination.name": "safety.reports", "messaging.kafka.offset": 7})
    assert dict(span.attributes) == {"messaging.destination.name": "safety.reports", "messaging.kafka.offset": 7}
