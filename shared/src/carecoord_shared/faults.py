"""Named failure points for crash-safety tests.

A process started with ``CARECOORD_CRASH_AT=consumer.before_commit@TreatmentHoldRequested``
kills itself with SIGKILL the first time it reaches that point for that event
type: exactly what a power cut or an OOM kill does, with no chance to clean up.
Unarmed (the default) a point costs one set lookup.

The points: ``consumer.before_commit`` (handler done, database not committed),
``consumer.after_commit_before_ack`` (database committed, Kafka offset not),
``uow.before_commit`` (outbox rows written, not committed) and
``relay.after_send_before_mark`` (broker acknowledged, rows not marked sent).
"""

from __future__ import annotations

import os
import signal
import sys


class FailurePoints:
    def __init__(self, spec: str = "") -> None:
        self._armed = frozenset(p.strip() for p in spec.split(",") if p.strip())

    def reach(self, point: str, detail: str = "") -> None:
        if not self._armed:
            return
        if point in self._armed or f"{point}@{detail}" in self._armed:
            sys.stderr.write(f"failure point {point}@{detail} reached: SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
