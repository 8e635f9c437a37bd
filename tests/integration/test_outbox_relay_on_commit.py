"""The relay's fast path: committed rows handed over from memory, sent without reading the outbox.

Against real PostgreSQL and Kafka, in-process. The polling interval is an hour
wherever the fast path is what must deliver; a row the fast path may not send
(its key has an older row not known to be on the broker, or its send failed)
goes to a polling pass that the relay runs at once. What landed is read as a
consumer's inbox applies it: the first copy of each event id counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from carecoord_contracts.safety import SideEffectReported
from carecoord_devstack.stack import Stack
from carecoord_shared.faults import FailurePoints
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from tests.conftest import eventually
from tests.integration.outbox_harness import Outbox, create_topic, event_id_of, landed
from tests.kafka_io import read_topic

TOPIC = "safety.reports"
HOUR = 3600.0


@pytest.fixture
async def outbox(stack: Stack) -> AsyncIterator[Outbox]:
    box = await Outbox.create(stack)
    yield box
    await box.dispose()


@pytest.fixture
async def topic(stack: Stack) -> str:
    """A fresh 3-partition topic whose records may be at most 4000 bytes."""
    name = f"relaytest.{uuid.uuid4().hex[:8]}"
    await create_topic(stack.kafka.bootstrap, name, **{"max.message.bytes": "4000"})
    return name


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # its first polling pass (crash leftovers) is over
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)


@contextmanager
def statements(outbox: Outbox) -> Iterator[list[str]]:
    """Every SQL statement the outbox's engine sends while inside."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(outbox.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(outbox.engine.sync_engine, "before_cursor_execute", record)


async def emit(uow: UnitOfWork, patient: uuid.UUID, n: int = 1) -> list[str]:
    async with uow.transaction() as tx:
        return [
            str(
                tx.emit(
                    SideEffectReported(
                        report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version=str(i)
                    ),
                    patient_id=patient,
                ).event_id
            )
            for i in range(n)
        ]


async def test_committed_rows_reach_kafka_in_order_with_no_polling_pass(stack: Stack, outbox: Outbox) -> None:
    relay = outbox.relay(poll_interval_s=HOUR)
    uow = outbox.uow(relay)
    patients = [uuid.uuid4() for _ in range(3)]
    written: dict[str, list[str]] = {str(p): [] for p in patients}
    async with running(relay):
        with statements(outbox) as sql:
            for i in range(4):
                for patient in patients:
                    written[str(patient)] += await emit(uow, patient, n=1 + i % 2)
            await eventually(lambda: _none_unsent(outbox), timeout=10, what="every row sent and marked")
    seen = await landed(stack.kafka.bootstrap, TOPIC)
    assert {p: seen[p] for p in written} == written
    assert not [s for s in sql if "pg_advisory_xact_lock" in s], "no polling pass: no relay lock taken"
    assert not [s for s in sql if "sent_at IS NULL" in s and "ORDER BY outbox.id" in s], "no SELECT of unsent rows"


async def test_the_fast_paths_rows_are_marked_together_and_a_stopping_relay_marks_the_rest(
    stack: Stack, outbox: Outbox
) -> None:
    # Marked once per interval, not after every pass: here the interval is an hour, so only the stop marks.
    relay = outbox.relay(poll_interval_s=HOUR, mark_interval_s=HOUR)
    uow = outbox.uow(relay)
    patients = [uuid.uuid4() for _ in range(3)]
    with statements(outbox) as sql:
        async with running(relay):
            for patient in patients:
                await emit(uow, patient)
                await eventually(lambda p=patient: _landed_on(stack, str(p)), timeout=10, what="the row on the broker")
            assert await outbox.unsent() == 3, "sent, the marks deferred"
            assert not [s for s in sql if s.startswith("UPDATE outbox SET sent_at")]
        # The stop: one UPDATE marks the three passes' rows.
        marks = [s for s in sql if s.startswith("UPDATE outbox SET sent_at")]
    assert len(marks) == 1
    assert await outbox.unsent() == 0


async def test_a_polling_pass_marks_the_fast_paths_unmarked_rows_without_sending_them_again(
    stack: Stack, outbox: Outbox
) -> None:
    relay = outbox.relay(poll_interval_s=HOUR, mark_interval_s=HOUR)
    patient = uuid.uuid4()
    async with running(relay):
        [first] = await emit(outbox.uow(relay), patient)
        await eventually(lambda: _landed_on(stack, str(patient)), timeout=10, what="the fast path's send")
        relay.wake()  # a polling pass while the row is sent and unmarked
        await eventually(lambda: _none_unsent(outbox), timeout=10, what="the polling pass's mark")
        [second] = await emit(outbox.uow(relay), patient)  # the key flows on the fast path after it
        await eventually(lambda: _copies_of(stack, second), timeout=10, what="the next row")
    assert await _copies_of(stack, first) == 1, "known to be on the broker: marked, not sent again"
    assert (await landed(stack.kafka.bootstrap, TOPIC))[str(patient)] == [first, second]


async def test_a_key_with_an_older_row_of_another_writer_is_not_overtaken(stack: Stack, outbox: Outbox) -> None:
    relay = outbox.relay(poll_interval_s=HOUR)
    uow = outbox.uow(relay)
    held, flowing = uuid.uuid4(), uuid.uuid4()
    async with running(relay):
        # Committed by a writer that hands nothing to this relay (another instance, a direct insert).
        older = await outbox.insert(TOPIC, str(held))
        mine = await emit(uow, held)
        other = await emit(uow, flowing)
        await eventually(lambda: _none_unsent(outbox), timeout=10, what="the polling pass sending the held key")
    seen = await landed(stack.kafka.bootstrap, TOPIC)
    assert seen[str(held)] == [older, *mine], "the handed-over row waited for the older one"
    assert seen[str(flowing)] == other


async def test_another_instance_holding_an_older_row_in_memory_is_not_overtaken(stack: Stack, outbox: Outbox) -> None:
    # Instance A committed a row of the patient and its relay has not sent it yet (not running);
    # instance B then commits the next one on the same database.
    relay_a, relay_b = outbox.relay(poll_interval_s=HOUR), outbox.relay(poll_interval_s=HOUR)
    patient = uuid.uuid4()
    first = await emit(outbox.uow(relay_a), patient)
    async with running(relay_b):
        await eventually(lambda: _none_unsent(outbox), timeout=10, what="B's first polling pass")
        # B's own first pass sent A's row already; write another of A's and hold it back.
        second = await emit(outbox.uow(relay_a), patient)
        third = await emit(outbox.uow(relay_b), patient, n=2)
        await eventually(lambda: _none_unsent(outbox), timeout=10, what="B's polling pass sending both instances' rows")
    async with running(relay_a):  # A's fast path now sends what it holds: a copy, dropped by the inbox
        await asyncio.sleep(0.5)
    seen = await landed(stack.kafka.bootstrap, TOPIC)
    assert seen[str(patient)] == [*first, *second, *third]


async def test_a_refused_fast_path_send_leaves_its_key_to_the_polling_pass_in_order(
    stack: Stack, outbox: Outbox, topic: str
) -> None:
    relay = outbox.relay(poll_interval_s=HOUR, park_retry_s=HOUR)
    key, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with running(relay):
        before = await outbox.commit(relay, topic, key)
        refused = await outbox.commit(relay, topic, key, pad=10_000)  # larger than the topic takes
        await eventually(lambda: _parked(relay), timeout=30, what="the polling pass parking the refused row")
        after = await outbox.commit(relay, topic, key)
        flowing = [await outbox.commit(relay, topic, other) for _ in range(2)]
        await eventually(lambda: _unsent_is(outbox, 2), timeout=10, what="the other key sent")
        await asyncio.sleep(0.3)  # the fast pass and the polling pass the held row caused are over
    seen = await landed(stack.kafka.bootstrap, topic)
    assert seen[key] == [before], "nothing after the refused row was sent"
    assert await outbox.unsent_of(key) == [refused, after], "the refused row and the one after it wait, in order"
    assert seen[other] == flowing


async def test_a_row_that_could_not_see_a_failed_older_row_still_waits_for_it(
    stack: Stack, outbox: Outbox, topic: str
) -> None:
    # Two transactions of one key at once: the second inserts before the first commits, so it
    # sees no older row. The first one's send is refused; the relay still holds the second (the
    # key failed in this process, and no polling pass has found it clear since), and the polling
    # pass keeps their id order.
    relay = outbox.relay(poll_interval_s=HOUR, park_retry_s=HOUR)
    uow = outbox.uow(relay)
    key = str(uuid.uuid4())
    async with running(relay):
        async with outbox.sessions() as first_tx, outbox.sessions() as second_tx:
            async with first_tx.begin():
                refused = await uow._write_outbox(first_tx, [_row(topic, key, pad=10_000)])
                await second_tx.begin()
                after = await uow._write_outbox(second_tx, [_row(topic, key)])
            relay.publish(refused)
            await eventually(lambda: _parked(relay), timeout=30, what="the refused row parked")
            relay.wake()  # another polling pass meanwhile: it leaves the parked key out, and learns nothing of it
            await asyncio.sleep(0.5)
            await second_tx.commit()
            relay.publish(after)
        assert after[0].older == () and after[0].id > refused[0].id
        await asyncio.sleep(0.5)  # the fast pass and the polling pass it asks for are over
    assert not (await landed(stack.kafka.bootstrap, topic)).get(key), "the later row did not overtake"
    assert await outbox.unsent_of(key) == [str(refused[0].event_id), str(after[0].event_id)]


async def test_a_transient_fast_path_failure_is_retried_by_the_polling_pass_in_order(
    stack: Stack, outbox: Outbox
) -> None:
    # A broker slow to answer metadata: TOPIC, which the relay's producer knows, flows; a topic it
    # does not know fails as transient on every pass (no answer in time) until the broker is back.
    # The polling pass after the failed send sends TOPIC's row and fails the key again, so no backoff
    # holds the relay's next turn, and the key's next rows are handed over while its first is unsent.
    bootstrap = stack.kafka.bootstrap
    late = f"relaytest.late.{uuid.uuid4().hex[:8]}"
    relay = outbox.relay(poll_interval_s=HOUR)
    assert await outbox.commit(relay, TOPIC, "warm-up") and await relay.drain_once() == 1  # TOPIC's metadata known
    relay._metadata_timeout_s = 0.000_001  # the broker slow from now on (the relay's setting, read per pass)
    key = str(uuid.uuid4())
    async with running(relay):
        await outbox.insert(TOPIC, str(uuid.uuid4()))  # not handed over: the polling pass finds it
        _flowing, first = await outbox.commit_rows(relay, [(TOPIC, str(uuid.uuid4()), 0), (late, key, 0)])
        await eventually(lambda: _unsent_is(outbox, 1), timeout=20, what="a polling pass that left only the failed row")
        await create_topic(bootstrap, late)
        relay._metadata_timeout_s = 5.0  # the broker back; the failed row is still unsent
        later = [await outbox.commit(relay, late, key) for _ in range(2)]
        await eventually(lambda: _none_unsent(outbox), timeout=30, what="the held rows sent by a polling pass")
    assert (await landed(bootstrap, late))[key] == [first, *later]
    assert (await relay.health())["parked_keys"] == 0, "transient: nothing parked"


async def test_a_crash_between_fast_path_send_and_mark_is_sent_again(stack: Stack, outbox: Outbox) -> None:
    # The failure point between the broker's ack and the mark, on the fast path; then the
    # process is gone, and the next one's polling pass sends the row again.
    crashing = outbox.relay(
        poll_interval_s=HOUR, failure_points=FailurePoints(transient="relay.after_send_before_mark@*1")
    )
    patient = uuid.uuid4()
    async with running(crashing):
        [event_id] = await emit(outbox.uow(crashing), patient)
        await eventually(lambda: _landed_on(stack, str(patient)), timeout=10, what="the fast path's send acknowledged")
        await asyncio.sleep(0.3)
        assert await outbox.unsent() == 1, "acknowledged, never marked: the failure point came between"
    assert await outbox.relay().drain_once() == 1
    assert await outbox.unsent() == 0
    assert (await landed(stack.kafka.bootstrap, TOPIC))[str(patient)] == [event_id]
    assert await _copies_of(stack, event_id) == 2, "sent twice, applied once"


def _row(topic: str, key: str, pad: int = 0) -> dict[str, object]:
    event_id = uuid.uuid4()
    envelope = {"event_id": str(event_id), "type": "SideEffectReported", "version": "1", "producer": "safety"}
    return {
        "event_id": event_id,
        "topic": topic,
        "key": key,
        "event_type": "SideEffectReported",
        "envelope": envelope | {"pad": "x" * pad},
        "trace_context": {},
    }


async def _none_unsent(outbox: Outbox) -> bool:
    return await outbox.unsent() == 0


async def _unsent_is(outbox: Outbox, n: int) -> bool:
    return await outbox.unsent() == n


async def _parked(relay: OutboxRelay) -> bool:
    return bool((await relay.health())["parked_keys"])


async def _landed_on(stack: Stack, key: str) -> bool:
    return bool((await landed(stack.kafka.bootstrap, TOPIC)).get(key))


async def _copies_of(stack: Stack, event_id: str) -> int:
    return sum(event_id_of(r) == event_id for r in await read_topic(stack.kafka.bootstrap, TOPIC))
