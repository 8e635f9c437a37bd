"""The services' Kafka settings reach a broker that demands TLS and SASL.

A second broker, started for this module, has a SASL_SSL listener (a
certificate of our own CA, SASL/PLAIN users) next to the PLAINTEXT one the
readiness probe uses. The same code path as a service process builds the
client security from ServiceSettings.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from carecoord_contracts import Topic
from carecoord_devstack.kafka import Kafka
from carecoord_devstack.paths import LOCAL
from carecoord_devstack.scratch import free_ports
from carecoord_shared.config import ServiceSettings
from carecoord_shared.kafka_security import aiokafka_security_options
from carecoord_shared.messaging.topic_admin import ensure_topics
from tests.tls import server_certificate

PASSWORD = "broker-password-" + uuid.uuid4().hex[:8]


@dataclass
class SecuredKafka(Kafka):
    secure_port: int = 0
    keystore: Path = Path()

    def _properties(self) -> str:
        plain = super()._properties()
        lines = [
            line
            for line in plain.splitlines()
            if not line.startswith(("listeners=", "advertised.listeners=", "listener.security.protocol.map="))
        ]
        return "\n".join(
            [
                *lines,
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.secure_port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port},SASL_SSL://127.0.0.1:{self.secure_port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN",
                "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_carecoord="{PASSWORD}";',
                "listener.name.sasl_ssl.ssl.keystore.type=PEM",
                f"listener.name.sasl_ssl.ssl.keystore.location={self.keystore}",
                "",
            ]
        )


@pytest.fixture(scope="module")
def secured_kafka() -> Iterator[tuple[SecuredKafka, Path]]:
    state_dir = LOCAL / "test-kafka-security"
    shutil.rmtree(state_dir, ignore_errors=True)
    certificate = server_certificate(state_dir / "tls")
    keystore = state_dir / "tls" / "broker-keystore.pem"
    keystore.write_bytes(certificate.keystore())
    plain, controller, secure = free_ports(3)
    kafka = SecuredKafka(
        state_dir, port=plain, controller_port=controller, heap="512m", secure_port=secure, keystore=keystore
    )
    kafka.start()
    try:
        yield kafka, certificate.ca
    finally:
        kafka.stop()


def settings_for(kafka: SecuredKafka, ca_file: Path, password: str = PASSWORD) -> ServiceSettings:
    return ServiceSettings(
        service="safety",
        kafka_bootstrap=f"127.0.0.1:{kafka.secure_port}",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="carecoord",
        kafka_sasl_password=password,
        kafka_ssl_cafile=str(ca_file),
    )


async def test_a_service_configured_for_tls_and_sasl_publishes_and_consumes(
    secured_kafka: tuple[SecuredKafka, Path],
) -> None:
    kafka, ca_file = secured_kafka
    options = aiokafka_security_options(settings_for(kafka, ca_file))
    bootstrap = f"127.0.0.1:{kafka.secure_port}"
    topic = Topic(name="security.check", producer="safety", consumers=(), events=(), description="", partitions=1)
    await asyncio.to_thread(ensure_topics, bootstrap, (topic,), 1, options)

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, b"over TLS, as a SASL user", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None, **options
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    assert [m.value for records in batch.values() for m in records] == [b"over TLS, as a SASL user"]


async def test_a_wrong_password_is_refused(secured_kafka: tuple[SecuredKafka, Path]) -> None:
    kafka, ca_file = secured_kafka
    options = aiokafka_security_options(settings_for(kafka, ca_file, password="not-the-password"))
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{kafka.secure_port}", request_timeout_ms=5000, **options)
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


async def test_a_broker_certificate_from_an_unknown_ca_is_refused(
    secured_kafka: tuple[SecuredKafka, Path], tmp_path: Path
) -> None:
    kafka, _ca_file = secured_kafka
    other_ca = server_certificate(tmp_path).ca
    options = aiokafka_security_options(settings_for(kafka, other_ca))
    producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{kafka.secure_port}", request_timeout_ms=5000, **options)
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


def test_sasl_without_credentials_is_a_clear_configuration_error() -> None:
    settings = ServiceSettings(service="safety", kafka_security_protocol="SASL_SSL")
    with pytest.raises(ValueError, match="CARECOORD_KAFKA_SASL_USERNAME"):
        aiokafka_security_options(settings)
