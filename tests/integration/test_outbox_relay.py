"""The outbox relay against real PostgreSQL and Kafka, in-process.

What landed is read as a consumer's inbox applies it: the first copy of each
event id counts, a later copy is dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from carecoord_contracts.safety import SideEffectReported
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from tests.conftest import eventually
from tests.integration.outbox_harness import Outbox, copies, create_topic, delete_topic, landed

TOPIC = "safety.reports"


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


async def test_rows_are_published_in_write_order_per_patient_and_marked_sent(stack: Stack, outbox: Outbox) -> None:
    patients = [uuid.uuid4() for _ in range(5)]
    written = await outbox.write(patients, per_patient=10)
    assert await outbox.unsent() == 50

    assert await outbox.relay().drain_once() == 50
    assert await outbox.unsent() == 0
    seen = await landed(stack.kafka.bootstrap, TOPIC)
    assert {p: seen[p] for p in written} == written


async def test_two_relays_draining_together_publish_each_row_once(stack: Stack, outbox: Outbox) -> None:
    patients = [uuid.uuid4() for _ in range(4)]
    written = await outbox.write(patients, per_patient=25)
    first, second = outbox.relay(), outbox.relay()
    sent = await asyncio.gather(first.drain_once(), second.drain_once())
    assert sum(sent) == 100 and 0 in sent, "the advisory lock lets one relay publish; the other finds nothing left"
    seen = await landed(stack.kafka.bootstrap, TOPIC)
    assert {p: seen[p] for p in written} == written


async def test_relay_wakes_on_commit_without_waiting_for_the_poll(stack: Stack, outbox: Outbox) -> None:
    relay = outbox.relay(poll_interval_s=60)  # polling must not be what delivers
    uow = UnitOfWork(outbox.sessions, outbox.tables, "safety", on_commit=relay.wake)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)  # the relay is now asleep
        patient = uuid.uuid4()
        async with uow.transaction() as tx:
            tx.emit(
                SideEffectReported(
                    report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version="w"
                ),
                patient_id=patient,
            )
        await eventually(lambda: _none_unsent(outbox), timeout=5, what="woken by the commit, not by a 60 s poll")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 5)


async def test_a_row_too_large_parks_its_key_at_that_row_and_the_others_flow(
    stack: Stack, outbox: Outbox, topic: str
) -> None:
    bootstrap = stack.kafka.bootstrap
    parked, others = str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(3)]
    before = await outbox.insert(topic, parked)
    refused = await outbox.insert(topic, parked, pad=10_000)
    after = await outbox.insert(topic, parked)
    flowing = {key: [await outbox.insert(topic, key) for _ in range(3)] for key in others}
    relay = outbox.relay()

    assert await asyncio.wait_for(relay.drain_once(), 60) == 1 + 9, (
        "the refused key's acknowledged prefix and every other key"
    )
    seen = await landed(bootstrap, topic)
    assert seen[parked] == [before], "nothing after the refused row was sent"
    assert await outbox.unsent_of(parked) == [refused, after], "the refused row and the one after it wait, in order"
    assert {key: seen[key] for key in others} == flowing
    health = await relay.health()
    assert health["backlog"] == 2 and health["parked_keys"] == 1
    [entry] = health["parked"]
    assert entry["topic"] == topic and entry["event_type"] == "SideEffectReported"
    assert entry["error"] == "MessageSizeTooLargeError" and entry["since_s"] >= 0

    # Only that key waits: the others' new rows flow, acknowledged rows are not sent again.
    more = await outbox.insert(topic, others[0])
    assert await asyncio.wait_for(relay.drain_once(), 60) == 1
    assert await copies(bootstrap, topic) == 1 + 9 + 1
    assert (await landed(bootstrap, topic))[others[0]] == [*flowing[others[0]], more]
    assert refused not in (await landed(bootstrap, topic))[parked]


async def test_a_missing_topic_parks_its_keys_until_it_exists(stack: Stack, outbox: Outbox, topic: str) -> None:
    bootstrap = stack.kafka.bootstrap
    missing = f"relaytest.missing.{uuid.uuid4().hex[:8]}"
    waiting, flowing = str(uuid.uuid4()), str(uuid.uuid4())
    held = [await outbox.insert(missing, waiting) for _ in range(2)]
    sent = [await outbox.insert(topic, flowing) for _ in range(2)]
    relay = outbox.relay(park_retry_s=0.5)

    assert await asyncio.wait_for(relay.drain_once(), 30) == 2
    assert (await landed(bootstrap, topic))[flowing] == sent
    health = await relay.health()
    assert health["parked_keys"] == 1 and health["parked"][0]["error"] == "TopicMissing"
    assert health["parked"][0]["topic"] == missing

    # Unparked by the retry timer once the topic exists.
    await create_topic(bootstrap, missing)
    await eventually(
        lambda: _drained(relay, outbox), timeout=30, interval=0.6, what="the parked key flowing once its topic exists"
    )
    assert (await landed(bootstrap, missing))[waiting] == held
    assert (await relay.health())["parked_keys"] == 0


async def test_a_topic_deleted_mid_run_parks_its_keys_and_the_others_flow(
    stack: Stack, outbox: Outbox, topic: str
) -> None:
    bootstrap = stack.kafka.bootstrap
    doomed = f"relaytest.doomed.{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, doomed)
    waiting, flowing = str(uuid.uuid4()), str(uuid.uuid4())
    relay = outbox.relay(request_timeout_ms=3000)
    await outbox.insert(doomed, waiting)
    assert await asyncio.wait_for(relay.drain_once(), 30) == 1  # the producer now knows the topic

    await delete_topic(bootstrap, doomed)
    await outbox.insert(doomed, waiting)
    sent = []
    # Some passes on stale metadata (transient: how many depends on when the broker's metadata catches up
    # with the deletion), then the broker says it is gone; the other key flows at every pass meanwhile.
    for _ in range(10):
        sent.append(await outbox.insert(topic, flowing))
        await asyncio.wait_for(relay.drain_once(), 30)
        if (await relay.health())["parked_keys"]:
            break
    assert (await landed(bootstrap, topic))[flowing] == sent
    health = await relay.health()
    assert health["parked_keys"] == 1 and health["parked"][0]["topic"] == doomed
    assert health["parked"][0]["error"] == "TopicMissing"


async def _none_unsent(outbox: Outbox) -> bool:
    return await outbox.unsent() == 0


async def _drained(relay: OutboxRelay, outbox: Outbox) -> bool:
    await relay.drain_once()
    return await outbox.unsent() == 0
