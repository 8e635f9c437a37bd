"""The outbox relay against real PostgreSQL and Kafka, in-process."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from sqlalchemy import MetaData, func, select

from carecoord_devstack.stack import Stack
from carecoord_shared.contracts.safety import SideEffectReported
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.tables import MessagingTables, messaging_tables
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions
from carecoord_devstack.scratch import scratch_database
from tests.kafka_io import read_topic

TOPIC = "safety.reports"


class Outbox:
    def __init__(self, url: str, tables: MessagingTables, broker: KafkaBroker) -> None:
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.tables = tables
        self.broker = broker
        self.published: list[bytes] = []

    def relay(self, fail_on_call: int | None = None) -> OutboxRelay:
        calls = 0

        async def publish(topic: str, value: bytes, key: bytes, headers: dict[str, str]) -> Any:
            nonlocal calls
            calls += 1
            if calls == fail_on_call:
                raise ConnectionError("broker went away")
            self.published.append(value)
            return await self.broker.publish(value, topic, key=key, headers=headers, no_confirm=True)

        return OutboxRelay(self.sessions, self.tables, publish, service="relaytest", batch_size=1000)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self.tables, "safety")

    async def unsent(self) -> int:
        async with self.sessions() as s:
            return (await s.execute(select(func.count()).where(self.tables.outbox.c.sent_at.is_(None)))).scalar_one()


@pytest.fixture
async def outbox(stack: Stack) -> AsyncIterator[Outbox]:
    url = await scratch_database(stack, "relaytest", "safety")
    metadata = MetaData()
    tables = messaging_tables(metadata)
    broker = KafkaBroker(stack.kafka.bootstrap, enable_idempotence=True, acks="all")
    await broker.start()
    box = Outbox(url, tables, broker)
    async with box.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield box
    await broker.stop()
    await box.engine.dispose()


async def _write(outbox: Outbox, patients: list[uuid.UUID], per_patient: int) -> dict[uuid.UUID, list[str]]:
    """One transaction per event, interleaving patients; returns each patient's event ids in write order."""
    written: dict[uuid.UUID, list[str]] = {p: [] for p in patients}
    uow = outbox.uow()
    for i in range(per_patient):
        for patient in patients:
            async with uow.transaction() as tx:
                env = tx.emit(
                    SideEffectReported(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version=str(i)),
                    patient_id=patient,
                )
            written[patient].append(str(env.event_id))
    return written


async def _on_topic(stack: Stack, patients: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    wanted = {str(p).encode(): p for p in patients}
    seen: dict[uuid.UUID, list[str]] = {p: [] for p in patients}
    for record in await read_topic(stack.kafka.bootstrap, TOPIC):
        if record.key in wanted:
            seen[wanted[record.key]].append(json.loads(record.value)["event_id"])
    return seen


async def test_rows_are_published_in_write_order_per_patient_and_marked_sent(stack: Stack, outbox: Outbox) -> None:
    patients = [uuid.uuid4() for _ in range(5)]
    written = await _write(outbox, patients, per_patient=10)
    assert await outbox.unsent() == 50

    assert await outbox.relay().drain_once() == 50
    assert await outbox.unsent() == 0
    assert await _on_topic(stack, patients) == written


async def test_a_failed_publish_marks_nothing_and_the_next_pass_sends_everything(stack: Stack, outbox: Outbox) -> None:
    patients = [uuid.uuid4() for _ in range(3)]
    written = await _write(outbox, patients, per_patient=4)

    with pytest.raises(ConnectionError):
        await outbox.relay(fail_on_call=5).drain_once()
    assert await outbox.unsent() == 12, "nothing is marked sent unless the whole batch was acknowledged"

    assert await outbox.relay().drain_once() == 12
    seen = await _on_topic(stack, patients)
    for patient in patients:
        # At-least-once: the first attempt's sends may appear again, but the last
        # occurrence of each event keeps the write order and nothing is missing.
        assert set(seen[patient]) == set(written[patient])
        assert _dedupe_keep_last(seen[patient]) == written[patient]


async def test_two_relays_draining_together_publish_each_row_once(stack: Stack, outbox: Outbox) -> None:
    patients = [uuid.uuid4() for _ in range(4)]
    written = await _write(outbox, patients, per_patient=25)
    first, second = outbox.relay(), outbox.relay()
    sent = await asyncio.gather(first.drain_once(), second.drain_once())
    assert sum(sent) == 100 and 0 in sent, "the advisory lock lets one relay publish; the other finds nothing left"
    assert await _on_topic(stack, patients) == written


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(stack: Stack, outbox: Outbox) -> None:
    relay = outbox.relay()
    relay._poll_interval_s = 60  # noqa: SLF001 - polling must not be what delivers
    uow = UnitOfWork(outbox.sessions, outbox.tables, "safety", on_commit=relay.wake)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)  # the relay is now asleep
        patient = uuid.uuid4()
        async with uow.transaction() as tx:
            tx.emit(SideEffectReported(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version="w"), patient_id=patient)
        for _ in range(100):
            if await outbox.unsent() == 0:
                break
            await asyncio.sleep(0.05)
        assert await outbox.unsent() == 0, "woken by the commit, not by a 60 s poll"
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)


def _dedupe_keep_last(ids: list[str]) -> list[str]:
    last = {event_id: i for i, event_id in enumerate(ids)}
    return sorted(last, key=last.__getitem__)
