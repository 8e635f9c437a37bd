"""The consumer's poll: FastStream's batch subscriber sleeps its whole batch
timeout after an empty poll, so a message arriving meanwhile waited for it
(up to 200 ms on an idle service). EventConsumer polls with aiokafka's getmany
alone, which waits for the first record and returns with it."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

import faststream.kafka.subscriber.usecase as usecase
from carecoord_shared.contracts.topics import topics_consumed_by
from carecoord_shared.messaging.consumer import POLL_TIMEOUT_MS, EventConsumer


class _Consumer:
    def __init__(self, batches: list[dict[Any, list[Any]]]) -> None:
        self.batches = batches
        self.calls: list[dict[str, Any]] = []

    async def getmany(self, **kwargs: Any) -> dict[Any, list[Any]]:
        self.calls.append(kwargs)
        return self.batches.pop(0)


async def test_an_empty_poll_polls_again_at_once_and_records_come_back_in_partition_order(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleeping(_seconds: float) -> None:
        raise AssertionError("the subscriber slept after an empty poll")

    monkeypatch.setattr(usecase.anyio, "sleep", no_sleeping)
    consumer = EventConsumer("dosing", uow=None, dead_letters=None, max_batch=50)  # type: ignore[arg-type]
    consumer.subscribe(KafkaBroker(), topics_consumed_by("dosing"), group_id="carecoord.dosing")
    a, b, c = _record(0, 1), _record(0, 2), _record(1, 1)
    kafka = _Consumer([{}, {"p0": [a, b], "p1": [c]}])

    assert await consumer.subscriber.get_msg(kafka) == ()
    assert await consumer.subscriber.get_msg(kafka) == (a, b, c)
    assert kafka.calls == [{"timeout_ms": POLL_TIMEOUT_MS, "max_records": 50}] * 2


async def test_a_header_that_is_not_text_cannot_cost_the_batch_its_valid_records() -> None:
    """FastStream decodes every header of a batch before the handler runs and drops the batch when one fails."""
    consumer = EventConsumer("dosing", uow=None, dead_letters=None)  # type: ignore[arg-type]
    consumer.subscribe(KafkaBroker(), topics_consumed_by("dosing"), group_id="carecoord.dosing")
    good = _record(0, 1, headers=[("event-type", b"TreatmentHoldRequested")])
    hostile = _record(0, 2, headers=[("event-type", b"\xff\xfe"), ("empty", None), ("traceparent", b"00-x")])
    kafka = _Consumer([{"p0": [good, hostile]}])

    polled = await consumer.subscriber.get_msg(kafka)

    assert polled[0] is good
    assert [(r.partition, r.offset, r.value) for r in polled] == [(0, 1, b"{}"), (0, 2, b"{}")]
    assert [key for key, _ in polled[1].headers] == ["event-type", "empty", "traceparent"]
    for record in polled:
        assert all(isinstance(value.decode(), str) for _key, value in record.headers)


def _record(partition: int, offset: int, headers: list[tuple[str, bytes | None]] | None = None) -> ConsumerRecord:
    return ConsumerRecord("safety.holds", partition, offset, 0, 0, b"k", b"{}", None, 1, 2, headers or [])
