"""Parking (issue 19, finding 3): a patient's later events never overtake one of theirs that failed.

Before, an event that hit a bug or ran out of transient retries was dead-lettered with no
inbox row, and that patient's next events (a hold's release after its request) were applied
before it. Now the failed event and every later event of that patient wait in the service's
own database, other patients flow on, and a release applies them in order. Against a real
PostgreSQL; records are built here and handed to the consumer as the poll would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import Column, Integer, MetaData, Table, Uuid, select
from sqlalchemy.exc import OperationalError

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.safety import SideEffectReported
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.consumer import EventConsumer, Outcome, RetryPolicy
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.messaging.unit_of_work import HandlerTransaction, UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions

METADATA = MetaData()
TABLES = messaging_tables(METADATA)
# The order in which reports took effect.
APPLIED = Table(
    "applied",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("report_id", Uuid, nullable=False),
)


class _DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, record: ConsumerRecord, *, reason: str, **_: Any) -> None:
        self.reasons.append(reason)


class Harness:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.dead_letters = _DeadLetters()
        uow = UnitOfWork(self.sessions, TABLES, "safety")
        retry = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)
        self.consumer = EventConsumer("safety", uow, self.dead_letters, retry=retry)  # type: ignore[arg-type]
        # report id -> the exception its handler raises (until removed: "the fix is deployed").
        self.failing: dict[uuid.UUID, Exception] = {}
        # Report ids whose handler also emits an event (caused by the report's envelope).
        self.emitting: set[uuid.UUID] = set()
        self.offset = 0

        @self.consumer.on(SideEffectReportSubmitted)
        async def apply(event: SideEffectReportSubmitted, tx: HandlerTransaction) -> None:
            if event.report_id in self.failing:
                raise self.failing[event.report_id]
            await tx.session.execute(APPLIED.insert().values(report_id=event.report_id))
            if event.report_id in self.emitting:
                reported = SideEffectReported(
                    report_id=event.report_id,
                    symptoms=event.symptoms,
                    grade=event.grade,
                    escalated=False,
                    rule_version="t",
                )
                tx.emit(reported, patient_id=tx.cause.patient_id)  # a handler's cause is never None

    def record(self, envelope: Envelope | None, value: bytes | None = None, key: bytes | None = None) -> ConsumerRecord:
        self.offset += 1
        body = value if value is not None else envelope.model_dump_json().encode()  # type: ignore[union-attr]
        return ConsumerRecord(
            "patient-app.reports", 0, self.offset, 0, 0, key or envelope.key, body, None, -1, len(body), []
        )  # type: ignore[union-attr]

    async def outbox(self) -> list[tuple[str, uuid.UUID | None]]:
        """(event type, causation id) of every outbox row, in write order."""
        async with self.sessions() as session:
            rows = await session.execute(select(TABLES.outbox.c.envelope).order_by(TABLES.outbox.c.id))
            return [
                (env["type"], uuid.UUID(env["causation_id"]) if env["causation_id"] else None) for env in rows.scalars()
            ]

    async def applied(self) -> list[uuid.UUID]:
        async with self.sessions() as session:
            return list((await session.execute(select(APPLIED.c.report_id).order_by(APPLIED.c.seq))).scalars())


@pytest.fixture
async def harness(stack: Stack) -> AsyncIterator[Harness]:
    h = Harness(await scratch_database(stack, "parkingtest", "safety"))
    async with h.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield h
    await h.engine.dispose()


def report(patient: uuid.UUID) -> tuple[Envelope, uuid.UUID]:
    event = SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1)
    return Envelope.wrap(event, patient_id=patient, producer="patient-app"), event.report_id


async def test_after_a_bug_the_patients_later_events_wait_and_a_release_applies_them_in_order(harness: Harness) -> None:
    patient, other = uuid.uuid4(), uuid.uuid4()
    (e1, r1), (e2, r2), (e3, r3), (o1, q1) = report(patient), report(patient), report(patient), report(other)
    harness.failing[r1] = ValueError("a handler bug")

    outcomes = await harness.consumer.handle_batch([harness.record(e) for e in (e1, e2, o1)])
    assert outcomes == [Outcome.dead_lettered, Outcome.parked, Outcome.processed]
    assert harness.dead_letters.reasons == ["handler_error"]
    # A later batch: the patient is still parked, alone or together with others.
    assert await harness.consumer.handle_batch([harness.record(e3)]) == [Outcome.parked]
    assert await harness.applied() == [q1]
    [parked] = await harness.consumer.parking.patients()
    assert (parked["patient_id"], parked["events"], parked["head"]["reason"]) == (str(patient), 3, "handler_error")
    assert await harness.consumer.parking.self_releasing() == []  # a bug waits for an operator

    # Released before the fix: nothing is applied, nothing skipped.
    assert await harness.consumer.release(patient) == {"released": 0, "done": False, "error": "ValueError"}
    assert await harness.applied() == [q1]

    del harness.failing[r1]  # the fix is deployed
    assert await harness.consumer.release(patient) == {"released": 3, "done": True, "error": None}
    assert await harness.applied() == [q1, r1, r2, r3]
    assert await harness.consumer.parking.count() == 0
    # And the patient flows again.
    e4, r4 = report(patient)
    assert await harness.consumer.handle_batch([harness.record(e4)]) == [Outcome.processed]
    assert (await harness.applied())[-1] == r4


async def test_transient_failures_past_the_budget_park_the_patient_and_the_consumer_may_retry_it(
    harness: Harness,
) -> None:
    patient = uuid.uuid4()
    (e1, r1), (e2, r2) = report(patient), report(patient)
    harness.failing[r1] = OperationalError("SELECT 1", {}, Exception("could not serialize access"))

    outcomes = [await harness.consumer.handle(harness.record(e)) for e in (e1, e2)]

    assert outcomes == [Outcome.dead_lettered, Outcome.parked]
    assert harness.dead_letters.reasons == ["retries_exhausted"]
    assert await harness.applied() == []
    assert await harness.consumer.parking.self_releasing() == [patient]
    del harness.failing[r1]
    assert (await harness.consumer.release(patient))["released"] == 2
    assert await harness.applied() == [r1, r2]


async def test_garbage_sent_with_a_patients_key_never_parks_that_patient(harness: Harness) -> None:
    patient = uuid.uuid4()
    e1, r1 = report(patient)
    garbage = harness.record(None, value=b'{"not": "an envelope"}', key=str(patient).encode())

    assert await harness.consumer.handle_batch([garbage, harness.record(e1)]) == [
        Outcome.dead_lettered,
        Outcome.processed,
    ]
    assert await harness.applied() == [r1]
    assert await harness.consumer.parking.count() == 0


async def test_a_redelivered_parked_event_is_applied_once(harness: Harness) -> None:
    patient = uuid.uuid4()
    (e1, r1), (e2, r2) = report(patient), report(patient)
    harness.failing[r1] = ValueError("a handler bug")
    await harness.consumer.handle_batch([harness.record(e) for e in (e1, e2)])
    # The offsets were not committed before a crash: both come again, and park again.
    assert await harness.consumer.handle_batch([harness.record(e) for e in (e1, e2)]) == [
        Outcome.parked,
        Outcome.parked,
    ]
    del harness.failing[r1]
    assert (await harness.consumer.release(patient))["done"] is True
    assert await harness.applied() == [r1, r2]


async def test_the_held_event_arriving_again_after_the_fix_releases_the_patient(harness: Harness) -> None:
    """What `carecoord dlq replay` does: the dead letter's event comes again on its topic."""
    patient = uuid.uuid4()
    (e1, r1), (e2, r2) = report(patient), report(patient)
    harness.failing[r1] = ValueError("a handler bug")
    await harness.consumer.handle_batch([harness.record(e) for e in (e1, e2)])
    assert await harness.applied() == []
    del harness.failing[r1]

    assert await harness.consumer.handle(harness.record(e1)) == Outcome.parked

    assert await harness.applied() == [r1, r2]
    assert await harness.consumer.parking.count() == 0


async def test_what_a_released_event_s_handler_emits_is_written_caused_by_that_event(harness: Harness) -> None:
    """A release applies a parked event in the transaction that unparks it: its handler's events
    reach the outbox with that commit, caused by the released event (not by nothing)."""
    patient = uuid.uuid4()
    (e1, r1), (e2, r2) = report(patient), report(patient)
    harness.failing[r1] = ValueError("a handler bug")
    harness.emitting |= {r1, r2}
    assert await harness.consumer.handle_batch([harness.record(e) for e in (e1, e2)]) == [
        Outcome.dead_lettered,
        Outcome.parked,
    ]
    assert await harness.outbox() == []

    del harness.failing[r1]
    assert await harness.consumer.release(patient) == {"released": 2, "done": True, "error": None}
    assert await harness.outbox() == [("SideEffectReported", e1.event_id), ("SideEffectReported", e2.event_id)]
