"""The relay when the network to the broker goes quiet: a batch fails for good, and then?

A broker of its own (tests/proxied_kafka.py) that the relay reaches only
through a TcpProxy, stalled past the producer's request timeout: the batch in
flight expires and aiokafka fails it, the next batch of that partition goes
out. Read with a keep-first oracle, as consumers' inboxes apply it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from carecoord_devstack.paths import LOCAL
from carecoord_devstack.stack import Stack
from tests.conftest import eventually
from tests.integration.outbox_harness import Outbox, create_topic, landed
from tests.proxied_kafka import ProxiedKafka
from tests.tcp_proxy import TcpProxy

REQUEST_TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def kafka() -> Iterator[ProxiedKafka]:
    broker = ProxiedKafka.fresh(LOCAL / "test-relay-proxy")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def proxy(kafka: ProxiedKafka) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy.start(kafka.proxied_port, port=kafka.proxy_port)
    yield proxy
    await proxy.close()


@pytest.fixture
async def outbox(stack: Stack, kafka: ProxiedKafka, proxy: TcpProxy) -> AsyncIterator[Outbox]:
    box = await Outbox.create(stack, bootstrap=kafka.proxy_bootstrap)
    yield box
    await box.dispose()


async def test_a_batch_that_fails_for_good_never_lets_a_later_event_of_its_key_overtake(
    kafka: ProxiedKafka, proxy: TcpProxy, outbox: Outbox
) -> None:
    topic = f"relaytest.{uuid.uuid4().hex[:8]}"
    await create_topic(kafka.bootstrap, topic)
    relay = outbox.relay(request_timeout_ms=REQUEST_TIMEOUT_MS)
    await outbox.insert(topic, "warm-up")
    assert await asyncio.wait_for(relay.drain_once(), 30) == 1  # connected, metadata known

    # Enough ~1 KB rows per partition for several of aiokafka's default 16 KB batches,
    # each patient's rows interleaved with the others' as their transactions committed.
    patients = [str(uuid.uuid4()) for _ in range(4)]
    written: dict[str, list[str]] = {p: [] for p in patients}
    for _ in range(30):
        for patient in patients:
            written[patient].append(await outbox.insert(topic, patient, pad=900))

    proxy.stall()
    try:
        # The batch in flight expires; whatever the relay does meanwhile, nothing is lost.
        await asyncio.wait_for(relay.drain_once(), 60)
    except Exception:  # noqa: BLE001, S110 - a relay may also give up on the pass
        pass
    finally:
        proxy.resume()
    assert (await relay.health())["parked_keys"] == 0, "a broker out of reach is transient: nothing parked"

    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _none_unsent(outbox), timeout=60, what="the relay publishing everything once the broker is back")
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
    seen = await landed(kafka.bootstrap, topic)
    assert {p: seen[p] for p in patients} == written, "each patient's events in commit order, first copies counted"


async def _none_unsent(outbox: Outbox) -> bool:
    return await outbox.unsent() == 0
