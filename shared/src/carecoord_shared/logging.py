"""structlog configuration: JSON lines for machines, colours for a terminal.

Two routes, one shape. Our own lines (``structlog.get_logger(name)``) take
structlog's native path: a filtering bound logger (a line below the level costs
a method call that returns at once), the processors below, and orjson writing
bytes straight to stderr — no ``logging.LogRecord``, handler or formatter, which
cost most of a line's ~50 µs on the standard-library route. Standard-library
loggers (uvicorn, aiokafka, faststream, sqlalchemy) still go through ``logging``
and are formatted by the same processors, so every line has the same keys
(event, level, logger, timestamp, service, trace_id/span_id inside a span) and
the same PHI scrubbing. Log events name ids and types, never payload content.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, BinaryIO, TextIO

import structlog

from . import jsontext, privacy
from .telemetry import add_trace_ids


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Every line to ``stream`` (stderr unless given: the benchmark's goes to /dev/null)."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    levelno = logging.getLevelName(level.upper())
    if not isinstance(levelno, int):
        raise ValueError(f"unknown log level {level!r}")
    # For both routes: the level from the method called or the record, the logger's name from
    # get_logger(name) or the record (add_logger_name reads ``_record`` when there is one).
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        add_trace_ids,
        privacy.structlog_processor,
    ]
    binary: BinaryIO | None = getattr(stream, "buffer", None) if as_json else None
    if binary is not None:
        renderer: structlog.types.Processor = structlog.processors.JSONRenderer(serializer=_dumps)
        logger_factory = _NamedLoggerFactory(binary=binary)
    else:  # a terminal, or a stderr replaced by one without a byte buffer
        renderer = structlog.processors.JSONRenderer(serializer=_dumps_str) if as_json else _console()
        logger_factory = _NamedLoggerFactory(text=stream)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=logger_factory,
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=_dumps_str) if as_json else _console(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(levelno)
    # FastStream's module logger has a handler of its own and does not propagate.
    faststream = logging.getLogger("faststream")
    faststream.handlers[:] = []
    faststream.propagate = True
    # Chatty libraries: their INFO lines (a line per message received and
    # processed, group-coordinator retries at start-up) say nothing an operator
    # acts on; our consumer logs every outcome itself.
    for name in ("aiokafka", "sqlalchemy.engine", "uvicorn.access", "carecoord.faststream", "faststream"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # The span limits (telemetry.SPAN_LIMITS) cut a long SQL text on purpose; the SDK warns at every cut.
    logging.getLogger("opentelemetry.attributes").setLevel(max(logging.ERROR, root.level))


def _console() -> structlog.types.Processor:
    return structlog.dev.ConsoleRenderer()


def _dumps(obj: Any, default: Any = None, **_kw: Any) -> bytes:
    """orjson, and the standard library's json for what orjson refuses (an int past 64 bits): a line is never lost."""
    return jsontext.dumps(obj, default=default or str)


def _dumps_str(obj: Any, default: Any = None, **kw: Any) -> str:
    return _dumps(obj, default, **kw).decode()


class _NamedBytesLogger(structlog.BytesLogger):
    """structlog's bytes logger with the name it was got by (the line's ``logger``)."""

    def __init__(self, file: BinaryIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedTextLogger(structlog.WriteLogger):
    """The same on a text stream."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    """structlog.get_logger(name) -> a logger that knows its name, on stderr's bytes or its text."""

    def __init__(self, binary: BinaryIO | None = None, text: TextIO | None = None) -> None:
        self._binary = binary
        self._text = text

    def __call__(self, *args: Any) -> _NamedBytesLogger | _NamedTextLogger:
        # Every logger of ours is named (structlog.get_logger("carecoord.x")).
        name = str(args[0]) if args and args[0] is not None else "root"
        if self._binary is not None:
            return _NamedBytesLogger(self._binary, name)
        return _NamedTextLogger(self._text or sys.stderr, name)


def _add_service(service: str) -> structlog.types.Processor:
    def processor(_logger: object, _name: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return processor
