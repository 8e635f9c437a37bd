"""An outbox in a scratch database, relays over it, and what landed on a topic (read as consumers do)."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import MetaData, func, select

from carecoord_contracts.safety import SideEffectReported
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions
from tests.conftest import eventually
from tests.kafka_io import read_topic


class Outbox:
    def __init__(self, url: str, bootstrap: str) -> None:
        self.metadata = MetaData()
        self.tables = messaging_tables(self.metadata)
        self.engine = create_engine(url)
        self.sessions = create_sessions(self.engine)
        self.bootstrap = bootstrap
        self._relays: list[OutboxRelay] = []

    @classmethod
    async def create(cls, stack: Stack, bootstrap: str | None = None) -> Outbox:
        box = cls(await scratch_database(stack, "relaytest", "safety"), bootstrap or stack.kafka.bootstrap)
        async with box.engine.begin() as conn:
            await conn.run_sync(box.metadata.create_all)
        return box

    async def dispose(self) -> None:
        for relay in self._relays:
            await relay.close()
        await self.engine.dispose()

    def relay(self, *, request_timeout_ms: int = 40000, **options: Any) -> OutboxRelay:
        kafka = {"bootstrap_servers": self.bootstrap, "request_timeout_ms": request_timeout_ms}
        relay = OutboxRelay(self.sessions, self.tables, kafka, service="relaytest", **{"batch_size": 1000, **options})
        self._relays.append(relay)
        return relay

    def uow(self, relay: OutboxRelay | None = None) -> UnitOfWork:
        """A unit of work; with ``relay``, it hands its committed rows to that relay (as service.py wires it)."""
        return UnitOfWork(self.sessions, self.tables, "safety", publish=relay.publish if relay else None)

    async def commit(self, relay: OutboxRelay, topic: str, key: str, pad: int = 0) -> str:
        """One row for ``topic`` (any topic, any size) written and handed over as UnitOfWork does for
        an emitted event (its one outbox insert, then ``publish`` after COMMIT); returns its event id."""
        [event_id] = await self.commit_rows(relay, [(topic, key, pad)])
        return event_id

    async def commit_rows(self, relay: OutboxRelay, rows: list[tuple[str, str, int]]) -> list[str]:
        """Rows of (topic, key, pad) in one transaction, handed over as ``commit`` does; their event ids."""
        uow = self.uow(relay)
        outbox_rows: list[dict[str, object]] = []
        for topic, key, pad in rows:
            event_id = uuid.uuid4()
            envelope = {"event_id": str(event_id), "type": "SideEffectReported", "version": "1", "producer": "safety"}
            outbox_rows.append(
                {
                    "event_id": event_id,
                    "topic": topic,
                    "key": key,
                    "event_type": "SideEffectReported",
                    "envelope": envelope | {"pad": "x" * pad},
                    "trace_context": {},
                }
            )
        async with self.sessions() as s, s.begin():
            written = await uow._write_outbox(s, outbox_rows)
        relay.publish(written)
        return [str(row["event_id"]) for row in outbox_rows]

    async def unsent(self) -> int:
        async with self.sessions() as s:
            return (await s.execute(select(func.count()).where(self.tables.outbox.c.sent_at.is_(None)))).scalar_one()

    async def unsent_of(self, key: str) -> list[str]:
        """The event ids of ``key``'s rows not yet sent, in write order."""
        outbox = self.tables.outbox
        query = select(outbox.c.event_id).where(outbox.c.key == key, outbox.c.sent_at.is_(None)).order_by(outbox.c.id)
        async with self.sessions() as s:
            return [str(event_id) for event_id in (await s.execute(query)).scalars()]

    async def write(self, patients: list[uuid.UUID], per_patient: int) -> dict[str, list[str]]:
        """One transaction per event, interleaving patients; each patient's event ids in write order."""
        written: dict[str, list[str]] = {str(p): [] for p in patients}
        uow = self.uow()
        for i in range(per_patient):
            for patient in patients:
                async with uow.transaction() as tx:
                    env = tx.emit(
                        SideEffectReported(
                            report_id=uuid.uuid4(), symptoms=["nausea"], grade=1, escalated=False, rule_version=str(i)
                        ),
                        patient_id=patient,
                    )
                written[str(patient)].append(str(env.event_id))
        return written

    async def insert(self, topic: str, key: str, pad: int = 0) -> str:
        """One outbox row for ``topic`` written directly (any topic, any size); returns its event id."""
        event_id = str(uuid.uuid4())
        envelope = {
            "event_id": event_id,
            "type": "SideEffectReported",
            "version": "1",
            "producer": "safety",
            "pad": "x" * pad,
        }
        async with self.sessions() as s, s.begin():
            await s.execute(
                self.tables.outbox.insert().values(
                    event_id=uuid.UUID(event_id),
                    topic=topic,
                    key=key,
                    event_type="SideEffectReported",
                    envelope=envelope,
                )
            )
        return event_id


def event_id_of(record: Any) -> str | None:
    """The envelope's event id, or None for a record that is no envelope: a business topic of the shared
    test stack also carries what hostile-record tests wrote there, which no inbox applies."""
    try:
        value = json.loads(record.value)
    except (TypeError, ValueError):
        return None
    event_id = value.get("event_id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) and record.key is not None else None


async def landed(bootstrap: str, topic: str) -> dict[str, list[str]]:
    """Event ids per key in log order, each kept at its first copy: what an inbox applies."""
    seen: dict[str, list[str]] = defaultdict(list)
    for record in await read_topic(bootstrap, topic):
        event_id = event_id_of(record)
        if event_id is None:
            continue
        key = record.key.decode(errors="replace")
        if event_id not in seen[key]:
            seen[key].append(event_id)
    return seen


async def copies(bootstrap: str, topic: str) -> int:
    return len(await read_topic(bootstrap, topic))


async def create_topic(bootstrap: str, name: str, partitions: int = 3, **configs: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])

        # CreateTopics answers before the broker's metadata has the topic: until then a producer asking
        # for it hears UNKNOWN_TOPIC_OR_PARTITION (and a relay parks the key, as for a missing topic).
        async def described() -> bool:
            [topic] = await admin.describe_topics([name])
            return topic["error_code"] == 0 and len(topic["partitions"]) == partitions

        await eventually(described, timeout=30, interval=0.1, what=f"topic {name} in the broker's metadata")
    finally:
        await admin.close()


async def delete_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()
