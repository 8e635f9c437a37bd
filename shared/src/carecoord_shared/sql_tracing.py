"""One CLIENT span per run of SQL statements under one span, listing them, through SQLAlchemy's events.

Issue #22 priced a span per statement: with ``trace_sql`` off the A4 hop ran
25-45 % faster, and each handled event runs 4 to 8 statements. Here the
statements one pooled connection runs in a row under the same current span
(an HTTP request's, an event's consume span, or none) are one span, a child of
that span. A consumer's batch is one transaction serving several traces: its
claim of the inbox and its outbox insert are spans of their own and each
event's statements are a span under that event's consume span. A connection's
last span ends when the connection is returned to the pool (the ``checkin``
event, after the COMMIT's round trip: that is in the span); the others end
with their last statement. Our sessions check a connection out per transaction.
A span says what ran:

- ``db.statements``: each statement's SQL text in order, with its placeholders,
  never its bound values;
- ``db.statement_durations_ms``: how long each one took, in the same order;
- ``db.statement_count``;
- and what the engine is, built once: ``db.system``, ``db.name``, ``db.user``,
  ``net.peer.name``, ``net.peer.port``.

A failed statement is listed too and the span ends with an error status (its
description is cut to the exception type by the redacting exporter). A check-out
that ran no statement makes no span. A statement costs a context lookup, three
clock readings and two list appends; a span is started and ended at once when
its run is over, with the first statement's time and trace context (captured
then, so the parent is right even if the connection comes back from elsewhere).

The per-check-out state travels in the connection record's ``info`` dictionary,
which the pool's events and ``Connection.info`` share: one holder at a time.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.pool import ConnectionPoolEntry

_UNIT = "carecoord.sql_unit"
SPAN_NAME = "sql"


class _Run:
    """Statements one check-out ran in a row under one parent span: one span's worth."""

    __slots__ = ("context", "durations_ms", "ended_ns", "error", "parent", "started_ns", "statements")

    def __init__(self, parent: trace.Span) -> None:
        self.parent = parent
        self.context = otel_context.get_current()
        self.started_ns = time.time_ns()
        self.ended_ns = 0
        self.statements: list[str] = []
        self.durations_ms: list[float] = []
        self.error = ""

    def finish(self, statement: str, started: int) -> None:
        self.statements.append(statement)
        self.durations_ms.append(round((time.perf_counter_ns() - started) / 1e6, 3))
        self.ended_ns = time.time_ns()


class _Unit:
    """One check-out: the run of statements under way and when its current statement started."""

    __slots__ = ("run", "statement_started")

    def __init__(self) -> None:
        self.run: _Run | None = None
        self.statement_started = 0


class SqlTracer:
    def __init__(self, engine: Engine, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        url = engine.url
        # What every span of this engine says about it (built once).
        base: dict[str, Any] = {"db.system": _vendor(engine.dialect.name)}
        for key, value in (
            ("db.name", url.database),
            ("db.user", url.username),
            ("net.peer.name", url.host),
            ("net.peer.port", url.port),
        ):
            if value is not None:
                base[key] = value
        self.attributes = base

    def install(self, engine: Engine) -> None:
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)
        # A connection invalidated while checked out (a lost server) may never be checked in as itself.
        event.listen(engine, "invalidate", self._invalidated)
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._error)

    def _checkout(self, _dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        self._returned(record.info.pop(_UNIT, None))  # what a lost check-in left behind is reported, not dropped
        record.info[_UNIT] = _Unit()

    def _checkin(self, _dbapi: Any, record: ConnectionPoolEntry) -> None:
        self._returned(record.info.pop(_UNIT, None))

    def _invalidated(self, _dbapi: Any, record: ConnectionPoolEntry, _exception: BaseException | None) -> None:
        self._returned(record.info.pop(_UNIT, None))

    def _before(self, conn: Connection, _cursor: Any, _statement: str, _params: Any, _ctx: Any, _many: bool) -> None:
        unit = conn.info.get(_UNIT)
        if unit is None:  # checked out before the tracer was installed: its unit starts here
            unit = conn.info[_UNIT] = _Unit()
        parent = trace.get_current_span()
        if unit.run is None or unit.run.parent is not parent:
            self._end(unit.run)
            unit.run = _Run(parent)
        unit.statement_started = time.perf_counter_ns()

    def _after(self, conn: Connection, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool) -> None:
        unit = conn.info.get(_UNIT)
        if unit is not None and unit.run is not None:
            unit.run.finish(statement, unit.statement_started)

    def _error(self, context: ExceptionContext) -> None:
        conn = context.connection
        unit = None if conn is None else conn.info.get(_UNIT)
        if unit is None or unit.run is None:
            return
        if context.statement is not None:  # None: the COMMIT or ROLLBACK failed, after the listed statements
            unit.run.finish(context.statement, unit.statement_started)
        unit.run.error = str(context.original_exception)

    def _returned(self, unit: _Unit | None) -> None:
        """The check-out is over: its last run's span ends now, its COMMIT or ROLLBACK included."""
        if unit is not None and unit.run is not None:
            unit.run.ended_ns = time.time_ns()
            self._end(unit.run)

    def _end(self, run: _Run | None) -> None:
        if run is None or not run.statements:
            return
        span = self._tracer.start_span(
            SPAN_NAME,
            context=run.context,
            kind=SpanKind.CLIENT,
            start_time=run.started_ns,
            attributes={
                **self.attributes,
                "db.statement_count": len(run.statements),
                "db.statements": run.statements,
                "db.statement_durations_ms": run.durations_ms,
            },
        )
        if run.error:
            span.set_status(Status(StatusCode.ERROR, run.error))
        span.end(end_time=run.ended_ns)


def trace_sql(engine: Engine, tracer_provider: trace.TracerProvider | None = None) -> SqlTracer:
    """Trace the statements ``engine`` runs, a span per run under one span (an AsyncEngine: its ``sync_engine``)."""
    tracer = SqlTracer(engine, tracer_provider)
    tracer.install(engine)
    return tracer


def _vendor(dialect: str) -> str:
    return "postgresql" if dialect.startswith("postgres") else dialect
