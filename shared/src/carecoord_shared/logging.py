"""structlog configuration: JSON lines for machines, colours for a terminal.

Standard-library loggers (uvicorn, aiokafka, faststream, sqlalchemy) are routed
through the same processors, so every line has the same shape and carries the
service name. Log events name ids and types, never payload content.
"""

from __future__ import annotations

import logging
import sys

import structlog

from . import privacy
from .telemetry import add_trace_ids


def configure_logging(service: str, level: str = "INFO", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        add_trace_ids,
        privacy.structlog_processor,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # FastStream's module logger has a handler of its own and does not propagate.
    faststream = logging.getLogger("faststream")
    faststream.handlers[:] = []
    faststream.propagate = True
    # Chatty libraries: their INFO lines (a line per message received and
    # processed, group-coordinator retries at start-up) say nothing an operator
    # acts on; our consumer logs every outcome itself.
    for name in ("aiokafka", "sqlalchemy.engine", "uvicorn.access", "carecoord.faststream", "faststream"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def _add_service(service: str) -> structlog.types.Processor:
    def processor(_logger: object, _name: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return processor
