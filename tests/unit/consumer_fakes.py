"""Stand-ins for the database, the parking table and the dead-letter topic, for EventConsumer driven in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import SimpleNamespace
from typing import Any

from carecoord_contracts import Envelope
from carecoord_shared.messaging.parking import Claim


class FlakyDatabase:
    """A unit of work whose transactions fail with ``error`` the first ``failures`` times."""

    def __init__(self, error: Exception | None = None, failures: int = 0) -> None:
        self.error, self.failures, self.committed = error, failures, 0

    @asynccontextmanager
    async def transaction(self, cause: Envelope | None = None) -> AsyncIterator[Any]:
        if self.failures and self.error is not None:
            self.failures -= 1
            raise self.error

        async def claim_inbox(_envelope: Envelope, _topic: str) -> bool:
            return True

        async def claim_inbox_unless_parked(envelope: Envelope, _topic: str) -> Claim:
            return Claim(claimed={envelope.event_id}, parked={})  # nobody parked

        yield SimpleNamespace(
            claim_inbox=claim_inbox, claim_inbox_unless_parked=claim_inbox_unless_parked, cause=cause, session=None
        )
        self.committed += 1

    def handling(self, cause: Envelope) -> AbstractAsyncContextManager[Any]:
        """What the consumer opens for an event's handlers: the same transaction, named by its cause."""
        return self.transaction(cause)


class Parking:
    """Remembers whom the consumer parks and why (nobody is parked: the claim above says so)."""

    def __init__(self) -> None:
        self.parked: list[str] = []

    async def park(self, _session: Any, _envelope: Envelope, _record: Any, reason: str, _error: str = "") -> None:
        self.parked.append(reason)


class DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, _record: Any, *, reason: str, **_: Any) -> None:
        self.reasons.append(reason)
