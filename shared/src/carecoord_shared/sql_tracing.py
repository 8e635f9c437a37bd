"""One CLIENT span per SQL statement, through SQLAlchemy's own engine events.

This replaces opentelemetry-instrumentation-sqlalchemy on the services' engines
(issue #22: it was about a tenth of a service's CPU on the report path). Per
statement that instrumentor parses the engine URL into attributes, strips
comments off the whole statement with a regular expression and splits it to
name the span, sets each attribute on its own, and keeps pool metrics and a
``connect`` span for every check-out (a pool check-out, not a connection: our
sessions check one out per transaction). Here the attributes that describe the
engine are built once, a statement's span name is remembered per statement
text (compiled statements are cached, so the same texts recur), the span
starts with all its attributes at once, and there are no check-out spans or
pool metrics (nothing reads them; the pool's state is in readiness).

A span carries what the instrumentor's did under the default semantic
conventions: ``db.system``, ``db.name``, ``db.user``, ``net.peer.name``,
``net.peer.port`` and ``db.statement`` (the SQL text with its placeholders,
never the bound values). A failed statement's span ends with an error status
(its description is cut to the exception type by the redacting exporter).

The span travels from ``before_cursor_execute`` to ``after_cursor_execute``
in ``Connection.info``, SQLAlchemy's dictionary for exactly that: a
connection runs one statement at a time.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext

_SPAN = "carecoord.sql_span"
# Distinct statement texts a process runs are a few hundred; past this the names are computed, not cached.
_NAMES_KEPT = 4096


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
        self._names: dict[str, str] = {}

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._error)

    def name(self, statement: str) -> str:
        found = self._names.get(statement)
        if found is None:
            found = _operation(statement) or self.attributes["db.system"]
            if len(self._names) < _NAMES_KEPT:
                self._names[statement] = found
        return found

    def _before(self, conn: Connection, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool) -> None:
        conn.info[_SPAN] = self._tracer.start_span(
            self.name(statement), kind=SpanKind.CLIENT, attributes={**self.attributes, "db.statement": statement}
        )

    def _after(self, conn: Connection, _cursor: Any, _statement: str, _params: Any, _ctx: Any, _many: bool) -> None:
        span = conn.info.pop(_SPAN, None)
        if span is not None:
            span.end()

    def _error(self, context: ExceptionContext) -> None:
        conn = context.connection
        span = None if conn is None else conn.info.pop(_SPAN, None)
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, str(context.original_exception)))
            span.end()


def trace_sql(engine: Engine, tracer_provider: trace.TracerProvider | None = None) -> SqlTracer:
    """Trace every statement ``engine`` runs (for an AsyncEngine, pass its ``sync_engine``)."""
    tracer = SqlTracer(engine, tracer_provider)
    tracer.install(engine)
    return tracer


def _vendor(dialect: str) -> str:
    return "postgresql" if dialect.startswith("postgres") else dialect


def _operation(statement: str) -> str:
    """The statement's first word, past leading ``--`` and ``/* */`` comments (how the instrumentor named it)."""
    text = statement.lstrip()
    while text.startswith(("--", "/*")):
        end = text.find("\n") if text.startswith("--") else text.find("*/")
        if end < 0:
            return ""
        text = text[end + (1 if text.startswith("--") else 2) :].lstrip()
    first = text.split(None, 1)
    return first[0] if first else ""
