"""The relay when a batch fails for good: the network goes quiet, a topic is not authorised.

A broker of its own (tests/proxied_kafka.py), with ACLs enforced, that the
relay reaches only through a TcpProxy. Stalled past the producer's request
timeout, the batch in flight expires and aiokafka fails it, and the next batch
of that partition goes out. Read with a keep-first oracle, as consumers'
inboxes apply it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from carecoord_devstack.paths import LOCAL
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.relay import OutboxRelay
from tests.conftest import eventually
from tests.integration.outbox_harness import Outbox, create_topic, landed
from tests.proxied_kafka import ALL, WRITE, ProxiedKafka, add_topic_acl
from tests.tcp_proxy import TcpProxy

REQUEST_TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def kafka() -> Iterator[ProxiedKafka]:
    broker = ProxiedKafka.fresh(LOCAL / "test-relay-proxy", authorizer=True)
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
    except Exception:  # noqa: S110 - a relay may also give up on the pass
        pass
    finally:
        proxy.resume()
    assert (await relay.health())["parked_keys"] == 0, "a broker out of reach is transient: nothing parked"

    task = asyncio.create_task(relay.run())
    try:
        await eventually(
            lambda: _none_unsent(outbox), timeout=60, what="the relay publishing everything once the broker is back"
        )
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
    seen = await landed(kafka.bootstrap, topic)
    assert {p: seen[p] for p in patients} == written, "each patient's events in commit order, first copies counted"


@pytest.mark.parametrize("refused", [WRITE, ALL], ids=["write-denied-mid-run", "not-even-described"])
async def test_a_topic_not_authorised_parks_its_keys_and_the_others_flow(
    kafka: ProxiedKafka, outbox: Outbox, refused: int
) -> None:
    denied, open_ = (f"relaytest.{uuid.uuid4().hex[:8]}" for _ in range(2))
    for topic in (denied, open_):
        await create_topic(kafka.bootstrap, topic)
    waiting, flowing = str(uuid.uuid4()), str(uuid.uuid4())
    relay = outbox.relay(request_timeout_ms=REQUEST_TIMEOUT_MS)
    await outbox.insert(denied, waiting)
    assert await asyncio.wait_for(relay.drain_once(), 30) == 1  # writable until now, metadata known

    await add_topic_acl(kafka.bootstrap, denied, operation=refused)
    for _ in range(2):
        await outbox.insert(denied, waiting)
    sent = [await outbox.insert(open_, flowing) for _ in range(2)]
    await eventually(lambda: _parked(relay), timeout=30, interval=0.2, what="the key of the unwritable topic parked")
    assert (await landed(kafka.bootstrap, open_))[flowing] == sent
    health = await relay.health()
    assert health["parked_keys"] == 1 and health["backlog"] == 2
    assert health["parked"][0]["topic"] == denied and health["parked"][0]["error"] == "TopicAuthorizationFailedError"


async def _parked(relay: OutboxRelay) -> bool:
    await relay.drain_once()
    return bool((await relay.health())["parked_keys"])


async def _none_unsent(outbox: Outbox) -> bool:
    return await outbox.unsent() == 0
