"""When the consumer commits offsets: after a run of handled messages, never ahead of one."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import ConsumerRecord, TopicPartition

from carecoord_shared.messaging.consumer import EventConsumer


class _Kafka:
    def __init__(self, highwater: int | None, *, revoked: bool = False) -> None:
        self._highwater = highwater
        self._revoked = revoked

    def highwater(self, tp: TopicPartition) -> int | None:
        assert not self._revoked, "Partition is not assigned"  # what aiokafka does for a revoked partition
        return self._highwater


def _consumer(kafka: _Kafka | None, *, handled: int = 1, commit_every: int = 100) -> EventConsumer:
    consumer = EventConsumer("safety", uow=None, dead_letters=None, commit_every=commit_every)  # type: ignore[arg-type]
    consumer.subscriber = SimpleNamespace(consumer=kafka)
    consumer._handled_since_commit = handled
    return consumer


def _record(offset: int) -> ConsumerRecord:
    return ConsumerRecord("safety.holds", 0, offset, 0, 0, b"k", b"{}", None, 1, 2, ())


def test_a_caught_up_consumer_commits_after_every_message() -> None:
    assert _consumer(_Kafka(highwater=8))._commit_due(_record(7))


def test_the_commit_waits_while_the_partition_has_more_records() -> None:
    assert not _consumer(_Kafka(highwater=500))._commit_due(_record(7))


def test_a_long_run_is_committed_every_n_messages() -> None:
    assert _consumer(_Kafka(highwater=500), handled=100, commit_every=100)._commit_due(_record(7))


def test_a_stale_run_is_committed_after_the_interval() -> None:
    consumer = _consumer(_Kafka(highwater=500))
    consumer._last_commit -= 2.0
    assert consumer._commit_due(_record(7))


def test_unknown_highwater_or_a_revoked_partition_commit_at_once() -> None:
    assert _consumer(_Kafka(highwater=None))._commit_due(_record(7))
    assert _consumer(_Kafka(highwater=500, revoked=True))._commit_due(_record(7))
    assert _consumer(None)._commit_due(_record(7))
