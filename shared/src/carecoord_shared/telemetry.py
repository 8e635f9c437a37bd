"""OpenTelemetry for every service: traces, metrics, and trace ids in logs.

- Traces: HTTP server spans (FastAPI), Kafka publish and consume spans with
  W3C trace context in the message headers (carecoord_shared.messaging.tracing:
  a consume span per handled event, a publish span per published one) and
  database spans (SQLAlchemy). The outbox stores the trace context of the transaction that wrote a
  row and the relay publishes inside it, so one report is one trace across
  every service it reaches.
- Export: OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set (the collector of
  the container stack); Zipkin when CARECOORD_ZIPKIN_ENDPOINT is set (the
  trace UI of `make run`); JSON lines per service when CARECOORD_TRACES_DIR
  is set (tests). Every exporter is wrapped by the PHI policy.
- Metrics: OpenTelemetry instruments, exposed at /metrics (Prometheus text)
  and over OTLP when the endpoint is set.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import orjson
from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from structlog.typing import EventDict

from . import jsontext
from .privacy import exception_type_only, needs_scrubbing, scrub_attributes

METER = "carecoord"

# Bounds on what one span may carry (the SDK's defaults: 128 of each, values of any length). Ours
# carry about ten attributes; the largest values are SQL statements and stack traces. A span past
# these drops its oldest attributes and events and a value is cut at the length: never a span lost,
# never an unbounded one queued, copied and serialised on the exporter thread.
SPAN_LIMITS = SpanLimits(
    max_span_attributes=64,
    max_event_attributes=32,
    max_link_attributes=32,
    max_events=32,
    max_links=32,
    max_attribute_length=4096,
)


class RedactingSpanExporter(SpanExporter):
    """Applies the PHI policy to every span (and span event) before it leaves the process."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([self._scrubbed(s) for s in spans])

    @staticmethod
    def _scrubbed(span: ReadableSpan) -> ReadableSpan:
        described = bool(span.status.description)
        if (
            not described
            and not needs_scrubbing(span.attributes)
            and not any(needs_scrubbing(e.attributes) for e in span.events)
        ):
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=scrub_attributes(span.attributes),
            events=[Event(e.name, scrub_attributes(e.attributes), e.timestamp) for e in span.events],
            links=span.links,
            kind=span.kind,
            # An error status describes itself with the exception's text: its type only.
            status=Status(span.status.status_code, exception_type_only(span.status.description or ""))
            if described
            else span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class JsonLinesSpanExporter(SpanExporter):
    """One JSON object per finished span, appended to a file: easy to read back in tests and by hand."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # orjson: this runs on the span processor's thread, holding the GIL the event loop needs.
        data = b"".join(jsontext.dumps(_span_dict(s), option=orjson.OPT_APPEND_NEWLINE) for s in spans)
        with self._lock, open(self._path, "ab") as f:
            f.write(data)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _span_dict(span: ReadableSpan) -> dict[str, object]:
    ctx = span.context
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": span.resource.attributes.get("service.name"),
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "status": span.status.status_code.name,
        "start": span.start_time,
        "end": span.end_time,
    }


class Telemetry:
    def __init__(self, service: str, traces_dir: str = "", zipkin_endpoint: str = "") -> None:
        resource = Resource.create({"service.name": f"carecoord-{service}", "service.namespace": "carecoord"})
        self.tracer_provider = TracerProvider(resource=resource, span_limits=SPAN_LIMITS)
        exporters: list[SpanExporter] = []
        if traces_dir:
            exporters.append(JsonLinesSpanExporter(Path(traces_dir) / f"{service}.jsonl"))
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        if zipkin_endpoint:
            from opentelemetry.exporter.zipkin.json import ZipkinExporter

            exporters.append(ZipkinExporter(endpoint=zipkin_endpoint))
        for exporter in exporters:
            self.tracer_provider.add_span_processor(
                BatchSpanProcessor(RedactingSpanExporter(exporter), schedule_delay_millis=200)
            )
        readers: list[MetricReader] = [PrometheusMetricReader()]
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        self.meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        # Global, once per process: libraries and our own code find them there.
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def meter() -> metrics.Meter:
    return metrics.get_meter(METER)


@cache  # get_tracer builds a new Tracer per call (~7 µs), and this runs per event consumed and published
def tracer() -> trace.Tracer:
    # Before Telemetry sets the provider this is OpenTelemetry's proxy, which follows the provider once set.
    return trace.get_tracer(METER)


def add_trace_ids(_logger: object, _name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current span's trace and span ids on every line."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", f"{ctx.trace_id:032x}")
        event_dict.setdefault("span_id", f"{ctx.span_id:016x}")
    return event_dict
