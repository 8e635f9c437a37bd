"""Found by the fault suite: a PostgreSQL restart dead-lettered every message in flight.

While the server restarts, connecting raises asyncpg's CannotConnectNowError
(not wrapped by SQLAlchemy, so it was not even seen as transient: dead-lettered
at once), and a refused connection exhausted the bounded retries within a
second. Either way the offset moved on and the event was lost to its consumer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from carecoord_shared.contracts import Envelope
from carecoord_shared.contracts.patient_app import SideEffectReportSubmitted
from carecoord_shared.messaging.consumer import EventConsumer, Outcome, RetryPolicy
from carecoord_shared.messaging.errors import is_transient, is_unavailable


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def test_a_database_that_is_restarting_or_unreachable_is_unavailable() -> None:
    for exc in (
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        ConnectionRefusedError(),
        DBAPIError("SELECT 1", {}, _Orig("57P01")),  # admin_shutdown, wrapped
    ):
        assert is_unavailable(exc) and is_transient(exc), exc
    concurrent_duplicate = IntegrityError("INSERT", {}, _Orig("23505"))
    assert is_transient(concurrent_duplicate) and not is_unavailable(concurrent_duplicate)
    assert not is_unavailable(ValueError("bad"))


class _FlakyDatabase:
    """A unit of work whose transactions fail with ``error`` the first ``failures`` times."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures, self.committed = error, failures, 0

    @asynccontextmanager
    async def transaction(self, cause: Envelope | None = None) -> AsyncIterator[Any]:
        if self.failures:
            self.failures -= 1
            raise self.error

        async def claim_inbox(_envelope: Envelope, _topic: str) -> bool:
            return True

        yield SimpleNamespace(claim_inbox=claim_inbox, cause=cause, session=None)
        self.committed += 1


class _Parking:
    """Nobody parked yet; remembers whom the consumer parks and why."""

    def __init__(self) -> None:
        self.parked: list[str] = []

    async def parked_among(self, _session: Any, _patients: Any) -> dict[uuid.UUID, Any]:
        return {}

    async def park(self, _session: Any, _envelope: Envelope, _record: Any, reason: str, _error: str = "") -> None:
        self.parked.append(reason)


class _DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, _record: Any, *, reason: str, **_: Any) -> None:
        self.reasons.append(reason)


async def _deliver(database: _FlakyDatabase, parking: _Parking | None = None) -> tuple[Outcome, _DeadLetters]:
    dead_letters = _DeadLetters()
    consumer = EventConsumer(
        "safety", database, dead_letters, retry=RetryPolicy(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.002),  # type: ignore[arg-type]
        parking=parking or _Parking(),  # type: ignore[arg-type]
    )

    @consumer.on(SideEffectReportSubmitted)
    async def handle(_event: Any, _tx: Any) -> None:
        pass

    envelope = Envelope.wrap(
        SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1), patient_id=uuid.uuid4(), producer="patient-app"
    )
    record = SimpleNamespace(
        topic="patient-app.reports", partition=0, offset=7, key=envelope.key, value=envelope.model_dump_json().encode(), headers=()
    )
    return await consumer.handle(record), dead_letters  # type: ignore[arg-type]


async def test_a_message_waits_for_a_restarting_database_however_many_attempts_it_takes() -> None:
    database = _FlakyDatabase(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), failures=20)
    outcome, dead_letters = await _deliver(database)
    assert (outcome, dead_letters.reasons, database.committed) == (Outcome.processed, [], 1)


async def test_a_conflict_that_keeps_coming_back_is_dead_lettered_and_parked_after_the_bounded_retries() -> None:
    # Three attempts fail; the fourth transaction is the one that parks the patient behind it.
    database = _FlakyDatabase(DBAPIError("UPDATE", {}, _Orig("40001")), failures=3)
    parking = _Parking()
    outcome, dead_letters = await _deliver(database, parking)
    assert (outcome, dead_letters.reasons, parking.parked) == (Outcome.dead_lettered, ["retries_exhausted"], ["retries_exhausted"])
