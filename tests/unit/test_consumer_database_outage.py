"""Found by the fault suite: a PostgreSQL restart dead-lettered every message in flight.

While the server restarts, connecting raises asyncpg's CannotConnectNowError
(not wrapped by SQLAlchemy, so it was not even seen as transient: dead-lettered
at once), and a refused connection exhausted the bounded retries within a
second. Either way the offset moved on and the event was lost to its consumer.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_shared.messaging.consumer import EventConsumer, Outcome, RetryPolicy
from carecoord_shared.messaging.errors import is_transient, is_unavailable

from .consumer_fakes import DeadLetters, FlakyDatabase, Parking


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


async def _deliver(database: FlakyDatabase, parking: Parking | None = None) -> tuple[Outcome, DeadLetters]:
    dead_letters = DeadLetters()
    consumer = EventConsumer(
        "safety",
        database,
        dead_letters,
        retry=RetryPolicy(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.002),  # type: ignore[arg-type]
        parking=parking or Parking(),  # type: ignore[arg-type]
    )

    @consumer.on(SideEffectReportSubmitted)
    async def handle(_event: Any, _tx: Any) -> None:
        pass

    envelope = Envelope.wrap(
        SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1),
        patient_id=uuid.uuid4(),
        producer="patient-app",
    )
    record = SimpleNamespace(
        topic="patient-app.reports",
        partition=0,
        offset=7,
        key=envelope.key,
        value=envelope.model_dump_json().encode(),
        headers=(),
    )
    return await consumer.handle(record), dead_letters  # type: ignore[arg-type]


async def test_a_message_waits_for_a_restarting_database_however_many_attempts_it_takes() -> None:
    database = FlakyDatabase(
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), failures=20
    )
    outcome, dead_letters = await _deliver(database)
    assert (outcome, dead_letters.reasons, database.committed) == (Outcome.processed, [], 1)


async def test_a_conflict_that_keeps_coming_back_is_dead_lettered_and_parked_after_the_bounded_retries() -> None:
    # Three attempts fail; the fourth transaction is the one that parks the patient behind it.
    database = FlakyDatabase(DBAPIError("UPDATE", {}, _Orig("40001")), failures=3)
    parking = Parking()
    outcome, dead_letters = await _deliver(database, parking)
    assert (outcome, dead_letters.reasons, parking.parked) == (
        Outcome.dead_lettered,
        ["retries_exhausted"],
        ["retries_exhausted"],
    )
