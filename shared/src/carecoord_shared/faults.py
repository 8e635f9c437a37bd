"""Named failure points for crash-safety tests.

A process started with ``CARECOORD_CRASH_AT=consumer.before_commit@TreatmentHoldRequested``
kills itself with SIGKILL the first time it reaches that point for that event
type: exactly what a power cut or an OOM kill does, with no chance to clean up.
Unarmed (the default) a point costs one set lookup.

``CARECOORD_TRANSIENT_AT=consumer.before_commit@TreatmentHoldRequested*7`` instead
raises a serialization failure (a transient database error) the first 7 times
that point is reached for that event type: more than the retry budget, so the
consumer's parking is exercised without a crash.

The points: ``consumer.before_commit`` (handler done, database not committed),
``consumer.after_commit_before_ack`` (database committed, Kafka offset not),
``uow.before_commit`` (outbox rows written, not committed) and
``relay.after_send_before_mark`` (broker acknowledged, rows not marked sent).
"""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy.exc import OperationalError


class InjectedTransientFailure(Exception):
    """What the database says to a serialization failure (SQLSTATE 40001)."""

    sqlstate = "40001"


class FailurePoints:
    def __init__(self, spec: str = "", transient: str = "") -> None:
        self._armed = frozenset(p.strip() for p in spec.split(",") if p.strip())
        # "point@detail" -> how many more times it raises.
        self._transient: dict[str, int] = {}
        for item in filter(None, (t.strip() for t in transient.split(","))):
            where, _, times = item.partition("*")
            self._transient[where] = int(times or 1)

    def reach(self, point: str, detail: str = "") -> None:
        if self._transient and self._transient.get(f"{point}@{detail}", 0) > 0:
            self._transient[f"{point}@{detail}"] -= 1
            raise OperationalError(f"failure point {point}@{detail}", {}, InjectedTransientFailure("injected"))
        if not self._armed:
            return
        if point in self._armed or f"{point}@{detail}" in self._armed:
            sys.stderr.write(f"failure point {point}@{detail} reached: SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
