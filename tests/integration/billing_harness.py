"""Billing's handlers and exchange in-process, against a fresh database on the test stack."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from carecoord_billing import fees, handlers
from carecoord_contracts import Envelope, Event, topic_for_event
from carecoord_contracts.common import AppointmentType, CoverageKind, Indication
from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import CoverageDeclared
from carecoord_contracts.scheduling import AppointmentCancelled, AppointmentCompleted
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.messaging.consumer import EventConsumer, Outcome
from carecoord_shared.messaging.deadletter import DeadLetterer
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.services import built

billing_definition = built("billing")

INSURANCE_STATES = frozenset({"TX", "NY"})


@dataclass
class Billing:
    uow: UnitOfWork
    consumer: EventConsumer
    dsn: str
    dead_letters: list[dict[str, Any]]

    async def deliver(self, envelope: Envelope) -> Outcome:
        record = SimpleNamespace(
            value=envelope.model_dump_json().encode(),
            key=envelope.key,
            topic=topic_for_event(envelope.type).name,
            partition=0,
            offset=0,
            headers=[],
        )
        return await self.consumer.handle(record)  # type: ignore[arg-type]

    async def publish(self, event: Event, patient_id: uuid.UUID, producer: str) -> Envelope:
        envelope = Envelope.wrap(event, patient_id=patient_id, producer=producer)
        outcome = await self.deliver(envelope)
        assert outcome in (Outcome.processed, Outcome.duplicate), (outcome, self.dead_letters)
        return envelope

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


async def fresh_database(stack: Stack, name: str) -> tuple[str, str]:
    """A new database owned by the billing role, migrated to head; returns (SQLAlchemy url, asyncpg dsn)."""
    url = await scratch_database(stack, name, "billing")
    await asyncio.to_thread(upgrade_to_head, url, billing_definition.migrations_dir)
    dsn = stack.postgres.dsn(name, user="postgres")
    return url, dsn


@pytest.fixture(scope="module")
async def billing(stack: Stack) -> AsyncIterator[Billing]:
    url, dsn = await fresh_database(stack, "billing_it")
    engine = create_engine(url)
    uow = UnitOfWork(create_sessions(engine), billing_definition.tables, "billing")
    dead: list[dict[str, Any]] = []

    async def publish_dead_letter(topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> None:
        dead.append({"topic": topic, "headers": headers})

    consumer = EventConsumer("billing", uow, DeadLetterer("billing", publish_dead_letter))
    handlers.register(consumer, fees=fees.load(), insurance_states=INSURANCE_STATES)
    yield Billing(uow, consumer, dsn, dead)
    await engine.dispose()


STARTED = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


def completed(
    appointment_id: uuid.UUID, kind: AppointmentType = AppointmentType.follow_up, video: bool = True
) -> AppointmentCompleted:
    return AppointmentCompleted(
        appointment_id=appointment_id,
        appointment_type=kind,
        clinician_id="dr-lee",
        started_at=STARTED,
        ended_at=STARTED + timedelta(minutes=50),
        video=video,
    )


def hold_cancelled(appointment_id: uuid.UUID, reason: str = "treatment_hold") -> AppointmentCancelled:
    return AppointmentCancelled(
        appointment_id=appointment_id, appointment_type=AppointmentType.dosing_session, reason=reason, starts_at=STARTED
    )


async def declare(
    billing: Billing,
    patient: uuid.UUID,
    kind: CoverageKind = CoverageKind.self_pay,
    state: str = "TX",
    payer_id: str | None = None,
) -> None:
    declared = CoverageDeclared(coverage_id=uuid.uuid4(), kind=kind, payer_id=payer_id, state_of_residence=state)
    await billing.publish(declared, patient, "intake")


async def charges_of(billing: Billing, patient: uuid.UUID) -> list:
    return await billing.fetch("SELECT * FROM charges WHERE patient_id = $1 ORDER BY created_at", patient)


async def outbox_types(billing: Billing, patient: uuid.UUID) -> list[str]:
    rows = await billing.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY id", str(patient))
    return [r["event_type"] for r in rows]


async def planned(
    billing: Billing, patient: uuid.UUID, codes: list[str] | None = None, indication: Indication = Indication.depression
) -> uuid.UUID:
    """The clinician's treatment plan, as dosing announces it: what billing takes the claim's diagnosis from."""
    plan_id = uuid.uuid4()
    created = TreatmentPlanCreated(
        plan_id=plan_id,
        starting_dose_mg=100,
        max_dose_mg=300,
        max_step_mg=50,
        planned_sessions=6,
        indication=indication,
        diagnosis_codes=codes or ["F33.1"],
    )
    await billing.publish(created, patient, "dosing")
    return plan_id
