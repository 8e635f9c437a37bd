"""The full pipeline hop (A4), shared by the throughput arm and the scaling workers.

EventConsumer (inbox claim, a state row and an outbox row in one PostgreSQL
transaction, offset committed after) and the OutboxRelay publishing
``SideEffectReported``: what one service process does per event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, text
from sqlalchemy.ext.asyncio import AsyncEngine

from carecoord_contracts import Topic
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.safety import SideEffectReported
from carecoord_records.raw_records import RawFetcher
from carecoord_shared.messaging.consumer import EventConsumer
from carecoord_shared.messaging.deadletter import DeadLetterer
from carecoord_shared.messaging.relay import OutboxRelay
from carecoord_shared.messaging.tables import messaging_tables
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork
from carecoord_shared.persistence import create_sessions

STATE = MetaData()
REPORTS = Table(
    "bench_reports",
    STATE,
    Column("report_id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("grade", Integer, nullable=False),
    Column("first_symptom", String(64), nullable=False),
)
TABLES = messaging_tables(STATE)


async def reset_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(STATE.create_all)
        await conn.execute(text("TRUNCATE bench_reports, inbox, outbox"))


@dataclass
class Hop:
    kafka: KafkaBroker
    consumer: EventConsumer
    relay: OutboxRelay
    topics: tuple[Topic, ...]
    group_id: str
    bootstrap: str
    relay_task: asyncio.Task[None] | None = None
    consume_task: asyncio.Task[None] | None = None
    kafka_consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        await self.kafka.start()
        # The consumer as the services run it (carecoord_shared.service.Runtime): aiokafka driven by EventConsumer.
        self.kafka_consumer = AIOKafkaConsumer(
            *(t.name for t in self.topics),
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=self.consumer.max_poll_interval_ms(),
        )
        await self.kafka_consumer.start()
        raw = RawFetcher({"bootstrap_servers": self.bootstrap})
        self.consume_task = asyncio.create_task(self.consumer.run(self.kafka_consumer, raw))
        self.relay_task = asyncio.create_task(self.relay.run())

    async def stop(self) -> None:
        if self.consume_task is not None:
            self.consume_task.cancel()
            await asyncio.gather(self.consume_task, return_exceptions=True)
        if self.kafka_consumer is not None:
            await self.kafka_consumer.stop()
        self.relay.stop()
        if self.relay_task is not None:
            await asyncio.wait_for(self.relay_task, 10)
        await self.kafka.stop()


def build_hop(
    kafka: KafkaBroker,
    engine: AsyncEngine,
    topics: tuple[Topic, ...],
    group_id: str,
    *,
    bootstrap: str,
    on_published: Callable[[], None] = lambda: None,
    consumer_cls: type[EventConsumer] = EventConsumer,
) -> Hop:
    """Wire the hop on ``kafka``; ``on_published`` runs when the broker acknowledged one output event."""
    sessions = create_sessions(engine)

    async def publish_and_wait(topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> Any:
        return await kafka.publish(value, topic, key=key, headers=headers)

    relay = OutboxRelay(sessions, TABLES, {"bootstrap_servers": bootstrap}, service="safety", on_published=on_published)
    uow = UnitOfWork(sessions, TABLES, "safety", publish=relay.publish)  # wired as service.py wires it
    consumer = consumer_cls("safety", uow, DeadLetterer("safety", publish_and_wait))

    @consumer.on(SideEffectReportSubmitted)
    async def recorded(event: SideEffectReportSubmitted, tx: Transaction) -> None:
        assert tx.cause is not None
        await tx.session.execute(
            REPORTS.insert().values(
                report_id=event.report_id,
                patient_id=tx.cause.patient_id,
                grade=event.grade,
                first_symptom=event.symptoms[0],
            )
        )
        tx.emit(
            SideEffectReported(
                report_id=event.report_id,
                symptoms=event.symptoms,
                grade=event.grade,
                escalated=event.grade >= 3,
                rule_version="bench",
            ),
            patient_id=tx.cause.patient_id,
        )

    return Hop(kafka, consumer, relay, topics, group_id, bootstrap)
