"""Issue 19, finding 5: a producer's clock ahead of the consumer's is flagged, not a dead letter.

An envelope whose occurred_at was more than CLOCK_SKEW ahead was refused as
invalid_envelope: every event of that producer dead-lettered, with no retry. Now
it is processed and counted (carecoord.events.clock_skew) with a log line that
names the producer and never the patient; only a date beyond any clock error
(more than a day ahead: a broken or hostile producer) is still refused. A timestamp a person reported in a
payload (a reading's measured_at) is still refused when it is in the future.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from carecoord_contracts import Envelope, Event
from carecoord_contracts.common import CLOCK_SKEW, PRODUCER_CLOCK_LIMIT, ReadingContext
from carecoord_contracts.patient_app import SideEffectReportSubmitted, VitalsSubmitted
from carecoord_shared.messaging.clock_skew import LOG_EVERY_S, ClockSkewFlag
from carecoord_shared.messaging.consumer import EventConsumer, Outcome

from .consumer_fakes import DeadLetters, FlakyDatabase, Parking

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AHEAD = timedelta(hours=1)


def _envelope(event: Event, *, occurred_at: datetime, producer: str = "patient-app") -> Envelope:
    return Envelope.wrap(event, patient_id=uuid.uuid4(), producer=producer, occurred_at=occurred_at)


def _report() -> SideEffectReportSubmitted:
    return SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1)


class _Counter:
    def __init__(self) -> None:
        self.added: list[tuple[int, dict[str, str]]] = []

    def add(self, amount: int, attributes: dict[str, str]) -> None:
        self.added.append((amount, attributes))


class _Clock:
    def __init__(self) -> None:
        self.at = 0.0

    def __call__(self) -> float:
        return self.at


def test_an_envelope_from_a_producer_whose_clock_runs_ahead_is_valid() -> None:
    envelope = _envelope(_report(), occurred_at=datetime.now(UTC) + AHEAD)
    assert Envelope.model_validate_json(envelope.model_dump_json()) == envelope


def test_an_envelope_dated_beyond_any_clock_error_is_still_refused() -> None:
    envelope = _envelope(_report(), occurred_at=datetime.now(UTC)).model_dump(mode="json")
    with pytest.raises(ValidationError, match="more than a day in the future"):
        Envelope.model_validate(
            {**envelope, "occurred_at": (datetime.now(UTC) + PRODUCER_CLOCK_LIMIT + AHEAD).isoformat()}
        )


def test_a_reading_dated_in_the_future_is_still_refused() -> None:
    with pytest.raises(ValidationError, match="must not be in the future"):
        VitalsSubmitted.model_validate(
            {
                "reading_id": str(uuid.uuid4()),
                "systolic": 120,
                "diastolic": 80,
                "context": "routine",
                "measured_at": (datetime.now(UTC) + AHEAD).isoformat(),
            }
        )


def test_ahead_beyond_tolerance_is_counted_by_producer_and_logged_without_the_patient() -> None:
    counter, clock = _Counter(), _Clock()
    flag = ClockSkewFlag(counter, now=lambda: NOW, monotonic=clock)  # type: ignore[arg-type]
    envelope = _envelope(_report(), occurred_at=NOW + AHEAD)
    with capture_logs() as logs:
        assert flag.note(envelope, "patient-app.reports")
    assert counter.added == [
        (1, {"producer": "patient-app", "event_type": "SideEffectReportSubmitted", "topic": "patient-app.reports"})
    ]
    [line] = logs
    assert line["event"] == "event.clock_skew" and line["log_level"] == "warning"
    assert line["producer"] == "patient-app" and line["ahead_s"] == AHEAD.total_seconds()
    assert str(envelope.patient_id) not in repr(line) and "patient_id" not in line


def test_within_tolerance_nothing_is_flagged() -> None:
    counter = _Counter()
    flag = ClockSkewFlag(counter, now=lambda: NOW, monotonic=_Clock())  # type: ignore[arg-type]
    with capture_logs() as logs:
        assert not flag.note(_envelope(_report(), occurred_at=NOW + CLOCK_SKEW), "patient-app.reports")
        assert not flag.note(_envelope(_report(), occurred_at=NOW - timedelta(days=3)), "patient-app.reports")
    assert counter.added == [] and logs == []


def test_a_producer_stamping_every_event_ahead_is_counted_each_time_and_logged_once_a_minute() -> None:
    counter, clock = _Counter(), _Clock()
    flag = ClockSkewFlag(counter, now=lambda: NOW, monotonic=clock)  # type: ignore[arg-type]
    with capture_logs() as logs:
        for _ in range(5):
            flag.note(_envelope(_report(), occurred_at=NOW + AHEAD), "patient-app.reports")
        clock.at += LOG_EVERY_S
        flag.note(_envelope(_report(), occurred_at=NOW + AHEAD), "patient-app.reports")
    assert len(counter.added) == 6
    assert [line["flagged_since_last_line"] for line in logs] == [0, 4]


# --- Through the consumer --------------------------------------------------------------------


async def _consume(envelope: Envelope) -> tuple[Outcome, list[str], list[Any]]:
    dead_letters = DeadLetters()
    consumer = EventConsumer("safety", FlakyDatabase(), dead_letters, parking=Parking())  # type: ignore[arg-type]
    handled: list[Any] = []

    @consumer.on(SideEffectReportSubmitted)
    @consumer.on(VitalsSubmitted)
    async def handle(event: Any, _tx: Any) -> None:
        handled.append(event)

    record = SimpleNamespace(
        topic="patient-app.reports",
        partition=0,
        offset=3,
        key=envelope.key,
        value=envelope.model_dump_json().encode(),
        headers=(),
    )
    return await consumer.handle(record), dead_letters.reasons, handled  # type: ignore[arg-type]


async def test_the_consumer_processes_an_event_stamped_ahead_instead_of_dead_lettering_it() -> None:
    outcome, dead_letters, handled = await _consume(_envelope(_report(), occurred_at=datetime.now(UTC) + AHEAD))
    assert (outcome, dead_letters, len(handled)) == (Outcome.processed, [], 1)


async def test_the_consumer_still_dead_letters_a_future_reading() -> None:
    """The payload's measured_at is a person's report: in the future, it is wrong, whatever the clocks."""
    reading = VitalsSubmitted.model_construct(
        reading_id=uuid.uuid4(),
        systolic=120,
        diastolic=80,
        heart_rate=None,
        context=ReadingContext.routine,
        measured_at=datetime.now(UTC) + AHEAD,
        appointment_id=None,
    )
    outcome, dead_letters, handled = await _consume(_envelope(reading, occurred_at=datetime.now(UTC)))
    assert (outcome, dead_letters, handled) == (Outcome.dead_lettered, ["invalid_payload"], [])


async def test_the_consumer_flags_an_event_stamped_ahead() -> None:
    producer = f"skew-{secrets.token_hex(4)}"  # its own producer: the log line is once a minute per producer
    with capture_logs() as logs:
        await _consume(_envelope(_report(), occurred_at=datetime.now(UTC) + AHEAD, producer=producer))
    assert [line["producer"] for line in logs if line["event"] == "event.clock_skew"] == [producer]
