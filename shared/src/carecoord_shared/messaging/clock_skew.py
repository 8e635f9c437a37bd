"""Envelopes stamped ahead of this consumer's clock: flagged, not dead-lettered.

An envelope's ``occurred_at`` is its producer's clock. When that clock runs more
than ``CLOCK_SKEW`` ahead of the consumer's, the event is no less true: refusing
it dead-lettered every event of that producer, with no retry, until someone
fixed a clock. So the envelope accepts it (up to ``PRODUCER_CLOCK_LIMIT`` ahead:
further is no clock error but a broken producer, still refused) and the
consumer says so here: a counter
(``carecoord.events.clock_skew`` by producer, event type and topic, which an alert
watches) and a log line naming the producer, never the patient.

The log line is kept to one per producer and topic a minute, with the count
since the last one: a producer whose clock is off stamps every event it sends,
and every consumer of its topics would otherwise log each of them.

Payload timestamps that a person or device reported (a side effect's onset, a
reading's ``measured_at``) stay ``PastTimestamp``: a future value there is a
wrong report, not a wrong clock.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from opentelemetry.metrics import Counter

from carecoord_contracts import Envelope
from carecoord_contracts.common import CLOCK_SKEW

from ..telemetry import meter

log = structlog.get_logger("carecoord.clock_skew")

LOG_EVERY_S = 60.0


class ClockSkewFlag:
    def __init__(
        self,
        counter: Counter,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counter = counter
        self._now = now
        self._monotonic = monotonic
        # (producer, topic) -> (when its last line was logged, events flagged since)
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}

    def note(self, envelope: Envelope, topic: str) -> bool:
        """Count and log ``envelope`` if it claims a time beyond tolerance ahead of this clock; True if it did."""
        ahead = envelope.occurred_at - self._now()
        if ahead <= CLOCK_SKEW:
            return False
        # Producer and event type are service and contract names, the topic a registry name: no PHI.
        self._counter.add(1, {"producer": envelope.producer, "event_type": envelope.type, "topic": topic})
        where = (envelope.producer, topic)
        last, since = self._logged.get(where, (None, 0))
        at = self._monotonic()
        if last is not None and at - last < LOG_EVERY_S:
            self._logged[where] = (last, since + 1)
            return True
        self._logged[where] = (at, 0)
        log.warning(
            "event.clock_skew",
            producer=envelope.producer,
            topic=topic,
            event_type=envelope.type,
            event_id=str(envelope.event_id),
            ahead_s=round(ahead.total_seconds(), 1),
            tolerance_s=CLOCK_SKEW.total_seconds(),
            flagged_since_last_line=since,
            hint="the producer's clock (or this host's) is off: check NTP on both; the event was processed",
        )
        return True


@functools.cache
def _flag() -> ClockSkewFlag:
    return ClockSkewFlag(
        meter().create_counter(
            "carecoord.events.clock_skew",
            description="Events whose occurred_at is ahead of this consumer's clock beyond tolerance (accepted), by producer",
        )
    )


def note_clock_skew(envelope: Envelope, topic: str) -> bool:
    """The consumer's call for each envelope it opens (see ClockSkewFlag.note)."""
    return _flag().note(envelope, topic)
