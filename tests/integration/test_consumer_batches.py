"""EventConsumer with a backlog: several events per PostgreSQL transaction, and
what it keeps of the one-event policy (inbox, dead letters, each event's own
cause and trace), against a real database. No Kafka: records are built here and
handed to ``handle_batch`` as the subscriber would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, Integer, MetaData, Table, Uuid, select, text

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.safety import SideEffectReported
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.consumer import EventConsumer, Outcome
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions
from carecoord_shared.telemetry import RedactingSpanExporter

TOPIC = "patient-app.reports"
METADATA = MetaData()
TABLES = messaging_tables(METADATA)
# One row per handled report, with the id of the transaction that wrote it.
REPORTS = Table(
    "reports",
    METADATA,
    Column("report_id", Uuid, primary_key=True),
    Column("grade", Integer, nullable=False),
    Column("txid", Integer, nullable=False),
)
FAILING_GRADE = 5  # the handler below raises for it: a bug, not a transient failure
CANARY = "Zqxv-canary@example.org"  # in the failing handler's exception text; must never reach a span


class _DeadLetters:
    def __init__(self) -> None:
        self.letters: list[tuple[int, str]] = []
        self.broker_down_at: int | None = None  # the offset whose dead letter cannot be sent

    async def send(self, record: ConsumerRecord, *, reason: str, **_: Any) -> None:
        if record.offset == self.broker_down_at:
            raise ConnectionError("broker away")
        self.letters.append((record.offset, reason))


class Harness:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.dead_letters = _DeadLetters()
        self.uow = UnitOfWork(self.sessions, TABLES, "safety")
        self.consumer = EventConsumer("safety", self.uow, self.dead_letters)  # type: ignore[arg-type]
        self.offset = 0

        @self.consumer.on(SideEffectReportSubmitted)
        async def record(event: SideEffectReportSubmitted, tx: Transaction) -> None:
            assert tx.cause is not None
            if event.grade == FAILING_GRADE:
                raise ValueError(f"a handler bug quoting a row: {CANARY}")
            txid = (await tx.session.execute(text("SELECT txid_current()::int"))).scalar_one()
            await tx.session.execute(REPORTS.insert().values(report_id=event.report_id, grade=event.grade, txid=txid))
            tx.emit(
                SideEffectReported(
                    report_id=event.report_id,
                    symptoms=event.symptoms,
                    grade=event.grade,
                    escalated=False,
                    rule_version="t",
                ),
                patient_id=tx.cause.patient_id,
            )

    def record(
        self, envelope: Envelope | None, *, value: bytes | None = None, traceparent: str | None = None
    ) -> ConsumerRecord:
        self.offset += 1
        headers = [("traceparent", traceparent.encode())] if traceparent else []
        body = value if value is not None else envelope.model_dump_json().encode()  # type: ignore[union-attr]
        return ConsumerRecord(
            TOPIC, 0, self.offset, 0, 0, envelope.key if envelope else b"k", body, None, len(body), -1, headers
        )

    async def rows(self, query: Any) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(query)).all())


@pytest.fixture
async def harness(stack: Stack) -> AsyncIterator[Harness]:
    url = await scratch_database(stack, "batchtest", "safety")
    h = Harness(url)
    async with h.engine.begin() as conn:
        await conn.run_sync(METADATA.create_all)
    yield h
    await h.engine.dispose()


def report(grade: int = 1, patient: uuid.UUID | None = None) -> Envelope:
    return Envelope.wrap(
        SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=grade),
        patient_id=patient or uuid.uuid4(),
        producer="patient-app",
    )


async def test_a_backlog_commits_in_one_transaction_and_each_event_keeps_its_own_cause(harness: Harness) -> None:
    patients = [uuid.uuid4(), uuid.uuid4()]
    reports = [report(grade=1 + i % 3, patient=patients[i % 2]) for i in range(6)]

    outcomes = await harness.consumer.handle_batch([harness.record(r) for r in reports])

    assert outcomes == [Outcome.processed] * 6
    txids = {row.txid for row in await harness.rows(select(REPORTS.c.txid))}
    assert len(txids) == 1, "one transaction for the whole batch"
    emitted = [Envelope.model_validate(row.envelope) for row in await harness.rows(select(TABLES.outbox.c.envelope))]
    assert sorted((e.causation_id, e.correlation_id, e.patient_id) for e in emitted) == sorted(
        (r.event_id, r.correlation_id, r.patient_id) for r in reports
    )
    claimed = {row.event_id for row in await harness.rows(select(TABLES.inbox.c.event_id))}
    assert claimed == {r.event_id for r in reports}


async def test_a_failing_event_rolls_its_batch_back_and_only_it_is_dead_lettered(harness: Harness) -> None:
    reports = [report(grade=1), report(grade=FAILING_GRADE), report(grade=2), report(grade=3)]
    records = [harness.record(r) for r in reports]

    outcomes = await harness.consumer.handle_batch(records)

    assert outcomes == [Outcome.processed, Outcome.dead_lettered, Outcome.processed, Outcome.processed]
    assert harness.dead_letters.letters == [(records[1].offset, "handler_error")]
    rows = await harness.rows(select(REPORTS.c.report_id, REPORTS.c.txid))
    assert sorted(str(row.report_id) for row in rows) == sorted(reports[i].payload["report_id"] for i in (0, 2, 3))
    assert len({row.txid for row in rows}) == 3, "after the rollback each event had a transaction of its own"
    outbox = await harness.rows(select(TABLES.outbox.c.event_id))
    assert len(outbox) == 3, "nothing of the rolled-back batch was published"
    claimed = {row.event_id for row in await harness.rows(select(TABLES.inbox.c.event_id))}
    assert claimed == {reports[i].event_id for i in (0, 2, 3)}


async def test_an_event_twice_in_a_batch_and_again_later_takes_effect_once(harness: Harness) -> None:
    first, second = report(), report()

    outcomes = await harness.consumer.handle_batch(
        [harness.record(first), harness.record(first), harness.record(second)]
    )
    again = await harness.consumer.handle_batch([harness.record(second), harness.record(first)])

    assert outcomes == [Outcome.processed, Outcome.duplicate, Outcome.processed]
    assert again == [Outcome.duplicate, Outcome.duplicate]
    rows = await harness.rows(select(REPORTS.c.txid))
    assert len(rows) == 2 and len({row.txid for row in rows}) == 1, "the copy did not cost the batch a rollback"
    assert len(await harness.rows(select(TABLES.outbox.c.event_id))) == 2


async def test_invalid_and_unhandled_records_leave_the_rest_of_the_batch_alone(harness: Harness) -> None:
    unhandled = Envelope.wrap(
        SideEffectReported(report_id=uuid.uuid4(), symptoms=["x"], grade=1, escalated=False, rule_version="t"),
        patient_id=uuid.uuid4(),
        producer="safety",
    )
    bad_payload = report().model_copy(update={"payload": {"grade": "not a grade"}})
    good = [report(), report()]
    records = [
        harness.record(None, value=b"{not json"),
        harness.record(unhandled),
        harness.record(good[0]),
        harness.record(bad_payload),
        harness.record(good[1]),
    ]

    outcomes = await harness.consumer.handle_batch(records)

    assert outcomes == [
        Outcome.dead_lettered,
        Outcome.skipped,
        Outcome.processed,
        Outcome.dead_lettered,
        Outcome.processed,
    ]
    assert harness.dead_letters.letters == [
        (records[0].offset, "invalid_envelope"),
        (records[3].offset, "invalid_payload"),
    ]
    assert len({row.txid for row in await harness.rows(select(REPORTS.c.txid))}) == 1


async def test_each_event_of_a_batch_continues_its_own_trace(harness: Harness) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):  # spans are recorded only with an SDK provider
        trace.set_tracer_provider(TracerProvider())
    reports = [report(), report(), report()]
    trace_ids = [uuid.uuid4().hex for _ in reports]
    records = [
        harness.record(r, traceparent=f"00-{t}-{uuid.uuid4().hex[:16]}-01")
        for r, t in zip(reports, trace_ids, strict=True)
    ]

    await harness.consumer.handle_batch(records)

    rows = await harness.rows(select(TABLES.outbox.c.envelope, TABLES.outbox.c.trace_context))
    by_cause = {Envelope.model_validate(row.envelope).causation_id: row.trace_context for row in rows}
    for r, trace_id in zip(reports, trace_ids, strict=True):
        context = propagate.extract(by_cause[r.event_id])
        assert f"{trace.get_current_span(context).get_span_context().trace_id:032x}" == trace_id


async def test_a_handler_failure_in_a_batch_leaves_no_exception_text_on_any_span(harness: Harness) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    exported = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(RedactingSpanExporter(exported)))  # type: ignore[attr-defined]
    records = [
        harness.record(report(grade=1)),
        harness.record(report(grade=FAILING_GRADE)),
        harness.record(report(grade=2)),
    ]

    outcomes = await harness.consumer.handle_batch(records)

    assert outcomes == [Outcome.processed, Outcome.dead_lettered, Outcome.processed]
    spans = exported.get_finished_spans()
    consumed = [s for s in spans if s.kind is trace.SpanKind.CONSUMER]
    assert [s.attributes["carecoord.outcome"] for s in consumed][-3:] == ["processed", "dead_lettered", "processed"]
    for span in spans:
        assert CANARY not in repr((span.status.description, span.attributes, [e.attributes for e in span.events]))


async def test_when_a_dead_letter_cannot_be_sent_the_batch_resumes_at_that_record_not_at_its_start(
    harness: Harness,
) -> None:
    records = [
        harness.record(None, value=b"{1"),
        harness.record(report()),
        harness.record(None, value=b"{2"),
        harness.record(report()),
    ]
    harness.dead_letters.broker_down_at = records[2].offset

    with pytest.raises(ConnectionError):
        await harness.consumer.handle_batch(records)

    # The first dead letter went out and both valid reports committed; the consumer resumes at the third record.
    assert harness.dead_letters.letters == [(records[0].offset, "invalid_envelope")]
    assert len(await harness.rows(select(REPORTS.c.report_id))) == 2
    assert harness.consumer.unfinished == {TopicPartition(TOPIC, 0): records[2].offset}
