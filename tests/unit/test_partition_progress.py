"""A stall is a position that stands still while records wait, not a lag that is merely large."""

from __future__ import annotations

from aiokafka import TopicPartition

from carecoord_shared.messaging.progress import PartitionProgress, degraded

P0, P1 = TopicPartition("patient-app.reports", 0), TopicPartition("patient-app.reports", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_behind_that_does_not_move_is_stalled_and_one_that_moves_is_not() -> None:
    clock = Clock()
    progress = PartitionProgress(stall_after_s=30, clock=clock)
    progress.observe({P0: (5, 6), P1: (100, 900)})
    clock.now += 31
    progress.observe({P0: (5, 6), P1: (400, 1200)})  # P1: far behind, but working
    assert progress.stalled() == [{"topic": P0.topic, "partition": 0, "lag": 1, "stalled_s": 31.0}]
    assert degraded({"consumer": {"running": True, "stalled_partitions": progress.stalled()}}) == [
        "consumer: 1 partition(s) not moving while records wait"
    ]


def test_not_stalled_before_the_threshold_nor_when_caught_up_nor_once_it_moves_again() -> None:
    clock = Clock()
    progress = PartitionProgress(stall_after_s=30, clock=clock)
    progress.observe({P0: (5, 6), P1: (7, 7)})
    clock.now += 29
    progress.observe({P0: (5, 6), P1: (7, 7)})
    assert progress.stalled() == []
    clock.now += 60
    progress.observe({P0: (6, 6), P1: (7, 7)})
    assert progress.stalled() == []
    assert degraded({"consumer": {"running": True, "stalled_partitions": []}, "outbox": {"backlog": 0}}) == []


def test_a_consume_loop_that_is_not_running_and_parked_keys_are_reasons_too() -> None:
    reasons = degraded({"consumer": {"running": False, "parked_keys": 2}, "outbox": {"parked_keys": 1}})
    assert reasons == [
        "consumer: the consume loop is not running",
        "consumer: 2 key(s) parked",
        "outbox: 1 key(s) parked",
    ]
