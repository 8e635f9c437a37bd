"""What a service's Telemetry exports: bounded spans, redacted, one JSON object per line.

In a process of its own: Telemetry sets the process's global tracer provider."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from carecoord_shared.telemetry import JsonLinesSpanExporter

PROGRAM = """
import sys
from carecoord_shared.telemetry import Telemetry

telemetry = Telemetry("dosing", traces_dir=sys.argv[1])
tracer = telemetry.tracer_provider.get_tracer("test")
with tracer.start_as_current_span("wide", attributes={f"carecoord.a{i:03}": i for i in range(100)}) as span:
    span.set_attribute("db.statement", "SELECT " + "x" * 10_000)
    span.set_attribute("carecoord.codes", ("F331", "F4310"))
    for i in range(40):
        span.add_event(f"e{i}")
with tracer.start_as_current_span("failing") as span:
    span.set_attribute("patient.email", "someone@example.org")
    span.record_exception(ValueError("Key (email)=(someone@example.org) already exists"))
telemetry.shutdown()
"""


def _exported(tmp_path: Path) -> dict[str, dict[str, Any]]:
    subprocess.run([sys.executable, "-c", textwrap.dedent(PROGRAM), str(tmp_path)], check=True, timeout=60)
    lines = (tmp_path / "dosing.jsonl").read_text().splitlines()
    spans = [json.loads(line) for line in lines]
    return {str(s["name"]): s for s in spans}


def test_a_span_keeps_at_most_64_attributes_32_events_and_values_of_4096_characters(tmp_path: Path) -> None:
    wide = _exported(tmp_path)["wide"]
    attributes = wide["attributes"]
    assert isinstance(attributes, dict) and isinstance(wide["events"], list)
    # Past 64 the SDK drops the oldest: the last ones set are kept, a long value is cut, not dropped.
    assert len(attributes) == 64
    assert "carecoord.a000" not in attributes and attributes["carecoord.a099"] == 99
    statement = attributes["db.statement"]
    assert statement.startswith("SELECT xxx") and len(statement) == 4096
    assert attributes["carecoord.codes"] == ["F331", "F4310"]
    assert len(wide["events"]) == 32


def test_limits_leave_ordinary_values_and_the_phi_policy_as_they_were(tmp_path: Path) -> None:
    spans = _exported(tmp_path)
    failing = spans["failing"]
    assert failing["service"] == "carecoord-dosing" and len(str(failing["trace_id"])) == 32
    assert failing["attributes"] == {"patient.email": "[redacted]"}
    [event] = failing["events"]
    assert event["attributes"]["exception.message"] == "[redacted]"
    assert "someone@example.org" not in (tmp_path / "dosing.jsonl").read_text()


def test_a_span_orjson_refuses_is_still_written_and_costs_no_other_span(tmp_path: Path) -> None:
    """A lone surrogate or an int past 64 bits in one attribute once failed the whole export batch."""
    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(path)
    finished = []
    tracer = TracerProvider().get_tracer("t")
    for attrs in ({"n": 2**70}, {"s": "bad \udcff text"}, {"ok": 1}):
        with tracer.start_as_current_span("s", attributes=attrs) as span:
            pass
        finished.append(span)
    assert exporter.export(finished).name == "SUCCESS"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [sorted(line["attributes"]) for line in lines] == [["n"], ["s"], ["ok"]]
    assert lines[0]["attributes"]["n"] == 2**70
