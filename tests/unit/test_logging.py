"""configure_logging: our lines on structlog's native route, the standard library's in the same shape.

Each case runs a small program in a process of its own: logging is configured per process (stderr,
the root logger, structlog's global configuration), and what is checked is the bytes it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PRELUDE = """
import logging, sys, uuid
import structlog
from opentelemetry.sdk.trace import TracerProvider
from carecoord_shared.logging import configure_logging

class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        self.names.append(record.name)

tracer = TracerProvider().get_tracer("test")
"""

# Every line carries these; a line written inside a span also its trace and span ids.
BASE_KEYS = {"event", "level", "logger", "timestamp", "service"}


def _run(body: str) -> tuple[list[dict[str, Any]], str]:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.decode().splitlines() if line.strip()]
    return lines, done.stdout.decode()


def test_our_lines_and_a_standard_library_line_have_the_same_keys_and_no_phi() -> None:
    lines, _ = _run(
        """
        configure_logging("dosing", "INFO", "json")
        with tracer.start_as_current_span("s"), structlog.contextvars.bound_contextvars(event_id="e-1"):
            structlog.get_logger("carecoord.consumer").info(
                "event.processed", event_type="T", email="someone@example.org", detail={"phone": "555-0100"}
            )
            logging.getLogger("uvicorn.error").warning("Started server process %s", 42)
        structlog.get_logger("carecoord.service").warning("outside.a.span")
        """
    )
    ours, stdlib, outside = lines
    assert ours["event"] == "event.processed" and ours["logger"] == "carecoord.consumer" and ours["level"] == "info"
    assert stdlib["event"] == "Started server process 42" and stdlib["logger"] == "uvicorn.error"
    assert stdlib["level"] == "warning"
    for line in (ours, stdlib):
        assert BASE_KEYS | {"trace_id", "span_id", "event_id"} <= set(line)
        assert line["service"] == "dosing" and line["event_id"] == "e-1"
        assert len(line["trace_id"]) == 32 and len(line["span_id"]) == 16
    assert ours["trace_id"] == stdlib["trace_id"]
    assert set(outside) == BASE_KEYS and outside["level"] == "warning"
    assert ours["email"] == "[redacted]" and ours["detail"] == {"phone": "[redacted]"}
    assert "someone@example.org" not in json.dumps(lines) and "555-0100" not in json.dumps(lines)
    assert outside["timestamp"].endswith("Z")


def test_our_lines_do_not_go_through_the_logging_module() -> None:
    """The native route: no LogRecord, no handler, no formatter for a line of ours."""
    lines, out = _run(
        """
        configure_logging("billing", "INFO", "json")
        records = Records()
        logging.getLogger().addHandler(records)
        structlog.get_logger("carecoord.billing.claims").info("claim.submitted", claim_id="c-1")
        logging.getLogger("aiokafka").warning("Heartbeat failed")
        print(records.names)
        """
    )
    assert [line["event"] for line in lines] == ["claim.submitted", "Heartbeat failed"]
    assert out.strip() == "['aiokafka']"


def test_the_level_filters_our_lines_and_the_libraries_lines() -> None:
    lines, _ = _run(
        """
        configure_logging("safety", "INFO", "json")
        log = structlog.get_logger("carecoord.safety.timers")
        log.debug("not.written")
        log.info("written")
        logging.getLogger("aiokafka").info("chatty library line, not written")
        configure_logging("safety", "debug", "json")
        structlog.get_logger("carecoord.safety.sessions").debug("now.written")
        """
    )
    assert [(line["event"], line["level"]) for line in lines] == [("written", "info"), ("now.written", "debug")]


def test_values_json_cannot_take_natively_are_still_written() -> None:
    """An id object, an integer past 64 bits, a non-string key, an exception: the line is never lost."""
    lines, _ = _run(
        """
        configure_logging("intake", "INFO", "json")
        log = structlog.get_logger("carecoord.intake")
        log.info("ids", patient=uuid.UUID(int=1), by_code={1: "a"}, obj=tracer)
        log.info("count", huge=2**70)
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("failed")
        """
    )
    ids, count, failed = lines
    assert ids["patient"] == "00000000-0000-0000-0000-000000000001" and count["huge"] == 2**70
    assert ids["by_code"] == {"1": "a"} and ids["obj"].startswith("<opentelemetry")
    assert failed["level"] == "error" and failed["exception"].rstrip().endswith("ValueError: bad value")


def test_a_terminal_gets_the_console_renderer() -> None:
    _, out = _run(
        """
        import io
        sys.stderr = io.StringIO()
        configure_logging("scheduling", "INFO", "console")
        structlog.get_logger("carecoord.scheduling").info("appointment.booked", appointment_id="a-1")
        logging.getLogger("uvicorn.error").warning("library line")
        print(sys.stderr.getvalue(), file=sys.stdout)
        """
    )
    ours, library = [line for line in out.splitlines() if line.strip()]
    assert "appointment.booked" in ours and "appointment_id" in ours and not ours.startswith("{")
    assert "library line" in library and not library.startswith("{")


def test_a_stream_given_takes_both_routes_and_stderr_gets_nothing(tmp_path: Path) -> None:
    target = tmp_path / "log"
    lines, _ = _run(
        f"""
        configure_logging("dosing", "INFO", "json", stream=open({str(target)!r}, "w"))
        structlog.get_logger("carecoord.consumer").info("ours")
        logging.getLogger("uvicorn.error").warning("theirs")
        """
    )
    assert lines == []
    assert [json.loads(line)["event"] for line in target.read_text().splitlines()] == ["ours", "theirs"]


def test_a_line_neither_json_library_takes_whole_is_still_written() -> None:
    """A UUID key (the standard library refuses it) with an int past 64 bits (orjson refuses it)."""
    import uuid

    from carecoord_shared import jsontext

    key = uuid.UUID(int=7)
    line = json.loads(jsontext.dumps({key: 1, "n": 2**70, "s": "\udcff"}))
    assert line == {str(key): 1, "n": 2**70, "s": "\udcff"}
