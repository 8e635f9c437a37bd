"""The local infrastructure: idempotent start, topics exactly as the registry says."""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import smtplib
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from carecoord_contracts import ALL_TOPICS, Topic
from carecoord_devstack.paths import LOCAL
from carecoord_devstack.postgres import Postgres
from carecoord_devstack.scratch import free_ports, fresh_stack
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.topic_admin import ensure_topics
from tests.conftest import eventually


def test_starting_a_running_stack_changes_nothing(stack: Stack) -> None:
    pid = stack.kafka.pid()
    assert stack.kafka.start() is False
    assert stack.postgres.start() is False
    assert stack.kafka.pid() == pid
    mailbox = stack.mailbox.pid()
    assert mailbox is not None and stack.mailbox.start() is False and stack.mailbox.pid() == mailbox
    assert ensure_topics(stack.kafka.bootstrap) == []
    assert stack.kafka.status().startswith("running")
    assert stack.postgres.status().startswith("running")


def test_the_stacks_mailbox_keeps_what_it_is_sent_in_its_maildir_and_services_are_told_where_it_is(
    stack: Stack,
) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@carecoord.localhost", "b@example.org", "hello"
    message["Message-ID"] = f"<{secrets.token_hex(8)}@devstack.test>"
    message.set_content("a line")
    with smtplib.SMTP(stack.mailbox.host, stack.mailbox.port, timeout=10) as smtp:
        smtp.send_message(message)
    [kept] = [m for m in stack.mailbox.messages() if m["Message-ID"] == message["Message-ID"]]
    assert kept["X-RcptTo"] == "b@example.org" and str(kept.get_payload()).strip() == "a line"
    assert any(stack.mailbox.maildir.joinpath("new").iterdir()), "one file per message, readable as it is"
    env = stack.services["engagement"].env
    assert (env["CARECOORD_SMTP_HOST"], env["CARECOORD_SMTP_PORT"]) == (stack.mailbox.host, str(stack.mailbox.port))


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


async def test_a_topic_made_before_a_registry_setting_gets_it_and_keeps_its_own_overrides(stack: Stack) -> None:
    """Issue 19, finding 4: a topic created without segment.ms (the broker's 7 days applied) is
    brought to the registry's segment.ms by the same ensure_topics every stack runs."""
    topic = Topic(
        name=f"admin.aligned-{secrets.token_hex(4)}", producer="safety", consumers=(), events=(), partitions=1
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka.bootstrap)
    await admin.start()
    try:
        # As the registry made it before segment.ms was in it, plus an operator's own override.
        old = {"retention.ms": str(topic.retention_ms), "max.message.bytes": "2000000"}
        await admin.create_topics([NewTopic(topic.name, 1, 1, topic_configs=old)])

        async def described() -> bool:
            return not (await admin.describe_topics([topic.name]))[0]["error_code"]

        await eventually(described, what="the topic's metadata")
        changes = await asyncio.to_thread(ensure_topics, stack.kafka.bootstrap, (topic,))
        assert changes == [f"set {topic.name} segment.ms={topic.segment_ms}"]
        [described] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic.name)])
        [resource] = described.to_object()["resources"]
        values = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
        assert values["segment.ms"] == str(topic.segment_ms)
        assert values["retention.ms"] == str(topic.retention_ms)
        assert values["max.message.bytes"] == "2000000", "an override not in the registry is kept"
        assert await asyncio.to_thread(ensure_topics, stack.kafka.bootstrap, (topic,)) == []
    finally:
        await admin.delete_topics([topic.name])
        await admin.close()


async def test_the_broker_refuses_to_auto_create_topics(stack: Stack) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
            await producer.send_and_wait("typo.topic", b"x")
    finally:
        await producer.stop()


# --- A machine on which carecoord never ran ----------------------------------------------------
# No system user, no state folder: asking, stopping and starting must work there as they do on
# a machine the team has used for months (issue 18: every integration test errored on a new one).


@pytest.fixture
def new_machine() -> Iterator[tuple[Path, str]]:
    """A state folder never used and a PostgreSQL system user that does not exist yet (removed after)."""
    user = f"cc_pg_{secrets.token_hex(4)}"
    with pytest.raises(KeyError):
        pwd.getpwnam(user)
    state = LOCAL / f"new-machine-{secrets.token_hex(4)}"
    yield state, user
    Postgres(state, system_user=user).stop()
    shutil.rmtree(state, ignore_errors=True)
    if os.geteuid() == 0 and _user_exists(user):
        subprocess.run(["userdel", user], check=True)


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _devstack(command: str, state: Path, user: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARECOORD_DEVSTACK_STATE": str(state), "CARECOORD_PG_SYSTEM_USER": user}
    return subprocess.run(
        [sys.executable, "-m", "carecoord_devstack.cli", command],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_and_down_before_anything_ever_ran_say_not_running(new_machine: tuple[Path, str]) -> None:
    state, user = new_machine
    for command in ("status", "down"):
        result = _devstack(command, state, user)
        assert result.returncode == 0, f"devstack {command}: {result.stdout}{result.stderr}"
        assert "Traceback" not in result.stdout + result.stderr
    assert "PostgreSQL  stopped" in _devstack("status", state, user).stdout
    assert "Kafka       stopped" in _devstack("status", state, user).stdout
    # The fixtures' and the benchmark's clean-up of a previous stack goes the same way.
    fresh = fresh_stack(state, fast_unsafe_db=True, service_env={})
    assert fresh.postgres.running() is False


def test_postgres_starts_and_stops_where_its_system_user_does_not_exist_yet(new_machine: tuple[Path, str]) -> None:
    state, user = new_machine
    (pg_port,) = free_ports(1)
    postgres = Postgres(state, port=pg_port, fast_unsafe=True, system_user=user)
    assert postgres.running() is False
    assert postgres.stop() is False
    assert postgres.start() is True
    try:
        assert postgres.running()
        assert _devstack("status", state, user).stdout.startswith("PostgreSQL  running")
        if os.geteuid() == 0:
            # As root the server runs as the user the first start created.
            assert _user_exists(user)
            assert (state / "postgres" / "data").stat().st_uid == pwd.getpwnam(user).pw_uid
        assert postgres.start() is False
    finally:
        assert postgres.stop() is True
    assert postgres.running() is False
    assert "PostgreSQL  stopped" in _devstack("status", state, user).stdout
