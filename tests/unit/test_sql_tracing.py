"""carecoord_shared.sql_tracing: one CLIENT span per statement, under the caller's span, with the SQL text
and never its values; a failed statement's span ends in error; nothing per check-out."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from carecoord_shared.sql_tracing import SqlTracer, trace_sql


@pytest.fixture
def traced() -> tuple[object, InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_engine("sqlite://")
    trace_sql(engine, provider)
    return engine, exporter, provider


def test_a_statement_is_one_client_span_under_the_callers_span(traced) -> None:
    engine, exporter, provider = traced
    with provider.get_tracer("test").start_as_current_span("handle") as parent, engine.connect() as conn:
        conn.execute(text("SELECT :secret"), {"secret": "someone@example.org"})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"SELECT", "handle"}  # no span for the check-out
    sql = spans["SELECT"]
    assert sql.kind is SpanKind.CLIENT
    assert sql.parent is not None and sql.parent.span_id == parent.get_span_context().span_id
    assert sql.attributes["db.system"] == "sqlite"
    assert sql.attributes["db.statement"] == "SELECT ?"
    assert "someone@example.org" not in repr(dict(sql.attributes))


def test_a_failed_statement_ends_its_span_in_error_and_the_next_one_is_its_own(traced) -> None:
    engine, exporter, _ = traced
    with engine.connect() as conn:
        with pytest.raises(OperationalError):
            conn.execute(text("SELECT * FROM missing"))
        conn.execute(text("SELECT 1"))
    failed, ok = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR and failed.end_time is not None
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["db.statement"] == "SELECT 1"


def test_the_span_name_is_the_first_word_past_comments() -> None:
    tracer = SqlTracer(create_engine("sqlite://"))
    assert tracer.name("\n    WITH arrived AS (SELECT 1) SELECT * FROM arrived") == "WITH"
    assert tracer.name("-- why\n/* and how */ UPDATE outbox SET sent_at = now()") == "UPDATE"
    assert tracer.name("   ") == "sqlite"


def test_the_engine_attributes_come_from_its_url() -> None:
    url = "postgresql+asyncpg://dosing:pw@127.0.0.1:5433/dosing"
    pytest.importorskip("asyncpg")
    from sqlalchemy.ext.asyncio import create_async_engine

    tracer = SqlTracer(create_async_engine(url).sync_engine)
    assert tracer.attributes == {
        "db.system": "postgresql",
        "db.name": "dosing",
        "db.user": "dosing",
        "net.peer.name": "127.0.0.1",
        "net.peer.port": 5433,
    }
