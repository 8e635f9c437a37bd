"""What a handled event costs in round trips to PostgreSQL, and what the pool does without pre-ping (issue 22).

An event handled alone used to cost, around its handlers' own statements: a check-out ping
(``pool_pre_ping``: BEGIN, an empty query, ROLLBACK with asyncpg), BEGIN, a SELECT of the
patient's parked events, the inbox insert, COMMIT. Now: BEGIN, one statement that claims the
event unless its patient is parked (and says who is), COMMIT. The round trips are counted on the
wire, by a proxy between the engine and the server (each request of PostgreSQL's protocol is
written whole and answered before the next), so nothing the driver does out of SQLAlchemy's
sight is missed. Against a real PostgreSQL; records are built here, as in test_parking.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import ConsumerRecord
from sqlalchemy import Column, MetaData, Table, Uuid, select
from structlog.testing import capture_logs

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.consumer import EventConsumer, Outcome, RetryPolicy
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.messaging.unit_of_work import HandlerTransaction, UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions
from tests.tcp_proxy import TcpProxy

DATABASE = "roundtriptest"
METADATA = MetaData()
TABLES = messaging_tables(METADATA)
APPLIED = Table("applied", METADATA, Column("report_id", Uuid, primary_key=True))


class _DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, record: ConsumerRecord, *, reason: str, **_: Any) -> None:
        self.reasons.append(reason)


class Harness:
    def __init__(self, stack: Stack, url: str, proxy: TcpProxy) -> None:
        self.stack = stack
        self.proxy = proxy
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.dead_letters = _DeadLetters()
        retry = RetryPolicy(max_attempts=3, backoff_initial_s=0.01, backoff_max_s=0.02)
        self.consumer = EventConsumer(
            "safety",
            UnitOfWork(self.sessions, TABLES, "safety"),
            self.dead_letters,  # type: ignore[arg-type]
            retry=retry,
        )
        self.failing: set[uuid.UUID] = set()
        self.offset = 0

        @self.consumer.on(SideEffectReportSubmitted)
        async def apply(event: SideEffectReportSubmitted, tx: HandlerTransaction) -> None:
            if event.report_id in self.failing:
                raise ValueError("a handler bug")
            await tx.session.execute(APPLIED.insert().values(report_id=event.report_id))  # its one statement

    def record(self, patient: uuid.UUID | None = None) -> ConsumerRecord:
        event = SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1)
        envelope = Envelope.wrap(event, patient_id=patient or uuid.uuid4(), producer="patient-app")
        self.offset += 1
        body = envelope.model_dump_json().encode()
        return ConsumerRecord("patient-app.reports", 0, self.offset, 0, 0, envelope.key, body, None, -1, len(body), [])

    async def round_trips(self, records: list[ConsumerRecord]) -> tuple[list[Outcome], int]:
        before = self.proxy.requests
        outcomes = await self.consumer.handle_batch(records)
        return outcomes, self.proxy.requests - before

    async def terminate_connections(self) -> int:
        """What a PostgreSQL restart does to the pool: every server process of the database ends."""
        conn = await asyncpg.connect(self.stack.postgres.dsn())
        try:
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                DATABASE,
            )
        finally:
            await conn.close()
        return len(rows)


@pytest.fixture
async def harness(stack: Stack) -> AsyncIterator[Harness]:
    url = await scratch_database(stack, DATABASE, "safety")
    proxy = await TcpProxy.start(stack.postgres.port)
    h = Harness(stack, url.replace(f":{stack.postgres.port}/", f":{proxy.port}/"), proxy)
    async with h.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield h
    await h.engine.dispose()
    await proxy.close()


async def test_an_event_handled_alone_costs_begin_one_claim_its_own_statements_and_commit(harness: Harness) -> None:
    # The first of a kind prepares its statements (a round trip each, then cached per connection).
    assert await harness.consumer.handle(harness.record()) == Outcome.processed

    outcomes, round_trips = await harness.round_trips([harness.record()])

    assert outcomes == [Outcome.processed]
    # BEGIN, the claim unless parked, the handler's insert, COMMIT (was 8: a 3-round-trip ping,
    # BEGIN, the parked SELECT, the inbox insert, the handler's insert, COMMIT).
    assert round_trips == 4


async def test_a_batch_costs_one_claim_for_all_its_events(harness: Harness) -> None:
    await harness.consumer.handle_batch([harness.record() for _ in range(3)])  # prepares the 3-event claim

    outcomes, round_trips = await harness.round_trips([harness.record() for _ in range(3)])

    assert outcomes == [Outcome.processed] * 3
    assert round_trips == 1 + 1 + 3 + 1  # BEGIN, one claim, each handler's insert, COMMIT (was 10)

    # The claim's text is the same for any number of events: a batch of a size not seen before
    # prepares nothing new (a multi-row VALUES would be a new statement to prepare, one more round trip).
    outcomes, round_trips = await harness.round_trips([harness.record() for _ in range(4)])
    assert outcomes == [Outcome.processed] * 4
    assert round_trips == 1 + 1 + 4 + 1


async def test_the_one_claim_still_parks_a_parked_patient_s_events_and_claims_the_others(harness: Harness) -> None:
    patient = uuid.uuid4()
    first = harness.record(patient)
    harness.failing.add(uuid.UUID(Envelope.model_validate_json(first.value).payload["report_id"]))  # type: ignore[arg-type]
    assert await harness.consumer.handle(first) == Outcome.dead_lettered  # and parked

    later, other = harness.record(patient), harness.record()
    assert await harness.consumer.handle_batch([later, other]) == [Outcome.parked, Outcome.processed]
    assert await harness.consumer.handle(harness.record(patient)) == Outcome.parked
    [parked] = await harness.consumer.parking.patients()
    assert (parked["patient_id"], parked["events"]) == (str(patient), 3)
    async with harness.sessions() as session:
        claimed = set((await session.execute(select(TABLES.inbox.c.event_id))).scalars())
    assert claimed == {Envelope.model_validate_json(other.value).event_id}  # type: ignore[arg-type]


async def test_after_the_server_closed_the_pooled_connections_the_next_event_is_handled_at_its_first_attempt(
    harness: Harness,
) -> None:
    """Without pre-ping, a check-out finds a connection the server closed and takes a fresh one:
    the event is neither failed nor retried (what the ping used to buy, for no round trip)."""
    assert await harness.consumer.handle(harness.record()) == Outcome.processed
    assert await harness.terminate_connections() >= 1
    await asyncio.sleep(0.2)  # the server's goodbye reaches the idle connection's socket

    with capture_logs() as logs:
        assert await harness.consumer.handle(harness.record()) == Outcome.processed

    assert [line["event"] for line in logs if line["log_level"] != "debug"] == ["event.processed"]
    assert harness.dead_letters.reasons == []


async def test_while_the_database_cannot_be_reached_an_event_waits_and_is_handled_once_it_is_back(
    harness: Harness,
) -> None:
    assert await harness.consumer.handle(harness.record()) == Outcome.processed
    port = harness.proxy.port
    await harness.proxy.close()  # the server gone: pooled connections cut, new ones refused
    record = harness.record()

    async def back_later() -> None:
        await asyncio.sleep(0.5)
        harness.proxy = await TcpProxy.start(harness.stack.postgres.port, port)

    outcome, _ = await asyncio.gather(harness.consumer.handle(record), back_later())

    assert outcome == Outcome.processed
    assert harness.dead_letters.reasons == []
