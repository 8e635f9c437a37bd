"""The local infrastructure: idempotent start, topics exactly as the registry says."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.topic_admin import ensure_topics
from carecoord_shared.contracts import ALL_TOPICS


def test_starting_a_running_stack_changes_nothing(stack: Stack) -> None:
    pid = stack.kafka.pid()
    assert stack.kafka.start() is False
    assert stack.postgres.start() is False
    assert stack.kafka.pid() == pid
    assert ensure_topics(stack.kafka.bootstrap) == []
    assert stack.kafka.status().startswith("running")
    assert stack.postgres.status().startswith("running")


async def test_topics_match_the_registry(stack: Stack) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    await admin.start()
    try:
        described = {d["topic"]: d for d in await admin.describe_topics([t.name for t in ALL_TOPICS])}
    finally:
        await admin.close()
    for topic in ALL_TOPICS:
        assert described[topic.name]["error_code"] == 0, topic.name
        assert len(described[topic.name]["partitions"]) == topic.partitions, topic.name


async def test_the_broker_refuses_to_auto_create_topics(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
            await producer.send_and_wait("typo.topic", b"x")
    finally:
        await producer.stop()
