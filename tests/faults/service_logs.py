"""What the services' logs say their outbox relays went through: how the nemesis knows a
fault it injected did something (a stall that no send ran into proves nothing).

The relay logs counts and error classes only (no keys: they are patient ids):
``outbox.keys_retrying`` when batches failed (``keys``: how many keys they held) and
``outbox.publish_failed`` when a whole pass did (the producer could not start, ...).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

RELAY_FAILURES = ("outbox.keys_retrying", "outbox.publish_failed")


class RelayFailures:
    """Relay failures logged by any service (every ``*.log`` of the folder, second
    instances included) from the moment this is created; ``poll()`` reads what is new."""

    def __init__(self, log_dir: Path) -> None:
        self._dir = log_dir
        self._since = datetime.now(UTC)
        self._offsets = {path: path.stat().st_size for path in log_dir.glob("*.log")}
        # "keys_retrying RequestTimedOutError" -> keys; "publish_failed KafkaConnectionError" -> passes
        self.seen: Counter[str] = Counter()

    @property
    def keys_timed_out(self) -> int:
        """Keys whose batch failed for good on the producer's timeout (RequestTimedOutError in
        flight, KafkaTimeoutError expired before it went out): the relay sends them again."""
        return sum(n for what, n in self.seen.items() if what.startswith("keys_retrying") and "Time" in what)

    def poll(self) -> Counter[str]:
        for path in sorted(self._dir.glob("*.log")):
            offset = self._offsets.get(path, 0)  # a log started meanwhile: from its beginning
            with open(path, "rb") as log:
                log.seek(offset)
                chunk = log.read()
            complete = chunk.rfind(b"\n") + 1  # a line being written is read next time
            self._offsets[path] = offset + complete
            for line in chunk[:complete].splitlines():
                if b'"outbox.' in line:
                    self._count(line)
        return self.seen

    def _count(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["timestamp"])
        except (ValueError, KeyError, TypeError):
            return
        if entry.get("event") in RELAY_FAILURES and at >= self._since:
            self.seen[f"{entry['event'].removeprefix('outbox.')} {entry.get('error')}"] += int(entry.get("keys", 1))
