"""carecoord_shared.sql_tracing: one CLIENT span per run of statements a check-out makes under one span,
a child of that span, listing the SQL texts and durations and never their values; a failed statement ends
its span in error; a check-out that ran nothing makes no span."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from carecoord_shared.sql_tracing import SPAN_NAME, SqlTracer, trace_sql


@pytest.fixture
def traced() -> tuple[object, InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_engine("sqlite://")
    trace_sql(engine, provider)
    return engine, exporter, provider


def test_statements_in_a_row_are_one_client_span_under_the_callers_span_listing_its_statements(traced) -> None:
    engine, exporter, provider = traced
    with provider.get_tracer("test").start_as_current_span("handle") as parent, engine.begin() as conn:
        conn.execute(text("SELECT :secret"), {"secret": "someone@example.org"})
        conn.execute(text("SELECT 2"))
        assert exporter.get_finished_spans() == (), "nothing is exported before the connection is returned"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {SPAN_NAME, "handle"}
    sql = spans[SPAN_NAME]
    assert sql.kind is SpanKind.CLIENT
    assert sql.parent is not None and sql.parent.span_id == parent.get_span_context().span_id
    assert sql.attributes["db.system"] == "sqlite"
    assert sql.attributes["db.statements"] == ("SELECT ?", "SELECT 2")
    assert sql.attributes["db.statement_count"] == 2
    durations = sql.attributes["db.statement_durations_ms"]
    assert len(durations) == 2 and all(0 <= d <= (sql.end_time - sql.start_time) / 1e6 for d in durations)
    assert "someone@example.org" not in repr(dict(sql.attributes))


def test_one_transaction_serving_several_spans_is_a_span_under_each_and_the_last_ends_at_the_check_in(
    traced,
) -> None:
    """A consumer's batch: the claim outside any event's span, then each event's statements under its own."""
    engine, exporter, provider = traced
    tracer = provider.get_tracer("test")
    with engine.begin() as conn:
        conn.execute(text("SELECT 'claim'"))
        with tracer.start_as_current_span("first") as first:
            conn.execute(text("SELECT 'a1'"))
            conn.execute(text("SELECT 'a2'"))
        with tracer.start_as_current_span("second") as second:
            conn.execute(text("SELECT 'b'"))
        conn.execute(text("SELECT 'outbox'"))
        outbox_ran = time.time_ns()
    sql = [s for s in exporter.get_finished_spans() if s.name == SPAN_NAME]
    assert [s.attributes["db.statements"] for s in sql] == [
        ("SELECT 'claim'",),
        ("SELECT 'a1'", "SELECT 'a2'"),
        ("SELECT 'b'",),
        ("SELECT 'outbox'",),
    ]
    claim, a, b, outbox = sql
    assert claim.parent is None and outbox.parent is None
    assert a.parent.span_id == first.get_span_context().span_id
    assert b.parent.span_id == second.get_span_context().span_id
    assert all(s.start_time <= s.end_time for s in sql)
    assert outbox.end_time > outbox_ran, "the check-out's last span ends when the connection is returned"


def test_each_check_out_is_its_own_span_and_one_that_ran_nothing_makes_none(traced) -> None:
    engine, exporter, _ = traced
    with engine.connect():
        pass
    for n in (1, 2):
        with engine.connect() as conn:
            conn.execute(text(f"SELECT {n}"))
    assert [s.attributes["db.statements"] for s in exporter.get_finished_spans()] == [("SELECT 1",), ("SELECT 2",)]


def test_a_failed_statement_is_listed_and_ends_its_span_in_error_and_the_next_one_is_its_own(traced) -> None:
    engine, exporter, _ = traced
    with engine.connect() as conn, pytest.raises(OperationalError):
        conn.execute(text("SELECT * FROM missing"))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    failed, ok = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR and failed.end_time is not None
    assert failed.attributes["db.statements"] == ("SELECT * FROM missing",)
    assert ok.status.status_code is StatusCode.UNSET
    assert ok.attributes["db.statements"] == ("SELECT 1",)


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
