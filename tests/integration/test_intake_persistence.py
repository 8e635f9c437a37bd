"""Intake's use cases against real PostgreSQL, in-process: PHI key rotation and the one-decision lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import carecoord_intake
from carecoord_contracts.common import CoverageKind, Instrument
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_intake import key_rotation, rules
from carecoord_intake.intake import Intake
from carecoord_intake.models import eligibility_decisions, messaging, patients
from carecoord_intake.phi import Demographics, PhiCipher, decrypt_demographics
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.conftest import eventually

DATABASE = "intake_in_process"
WHO = Demographics(
    first_name="Ottoline",
    last_name="Brackenridge",
    date_of_birth=date(1971, 5, 2),
    sex="F",
    email="ob@example.org",
    phone="+1 212 555 0199",
    address={"line1": "9 Pine St", "line2": None, "city": "Albany", "state": "NY", "postal_code": "12207"},
)


@dataclass
class Db:
    sessions: async_sessionmaker[AsyncSession]
    uow: UnitOfWork
    admin_dsn: str


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[Db]:
    url = await scratch_database(stack, DATABASE, "intake")
    await asyncio.to_thread(upgrade_to_head, url, Path(carecoord_intake.__file__).parent / "migrations")
    engine = create_engine(url)
    sessions = create_sessions(engine)
    try:
        yield Db(sessions, UnitOfWork(sessions, messaging, "intake"), stack.postgres.dsn())
    finally:
        await engine.dispose()


def intake_with(*keys: str) -> Intake:
    return Intake(rules=rules.load(), cipher=PhiCipher(list(keys)), served_states=frozenset({"NY"}))


async def test_reencryption_moves_every_phi_value_to_the_new_key(db: Db) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = intake_with(old)
    registered = []
    for n in range(3):
        async with db.uow.transaction() as tx:
            row, _ = await before.register(
                tx, external_id=f"rot-{n}", state_of_residence="NY", time_zone="America/New_York", who=WHO
            )
            await before.declare_coverage(
                tx, row.patient_id, kind=CoverageKind.insurance, payer_id="EMPIRE", member_id="MB-1", plan="Gold"
            )
        registered.append(row.patient_id)

    rewritten = await key_rotation.reencrypt_all(db.sessions, PhiCipher([new, old]), batch_size=2)
    assert rewritten == 6, "three patients and three coverages"

    async with db.sessions() as session:
        rows = (await session.execute(patients.select().where(patients.c.patient_id.in_(registered)))).all()
    assert [decrypt_demographics(intake_with(new).cipher, r) for r in rows] == [WHO] * 3
    with pytest.raises(InvalidToken):
        PhiCipher([old]).decrypt(rows[0].first_name_enc)


async def test_the_last_two_steps_committing_together_make_exactly_one_decision(db: Db) -> None:
    """Without the per-patient lock each transaction misses the other's uncommitted row and nobody decides."""
    intake = intake_with(Fernet.generate_key().decode())
    async with db.uow.transaction() as tx:
        patient, _ = await intake.register(
            tx, external_id="race", state_of_residence="NY", time_zone="America/New_York", who=WHO
        )
    pid = patient.patient_id
    for instrument, answers in (
        (Instrument.phq9, [2] * 6 + [0] * 3),
        (Instrument.gad7, [0] * 7),
        (Instrument.pcl5, [0] * 20),
    ):
        async with db.uow.transaction() as tx:
            await intake.record_assessment(tx, pid, instrument, answers)
    async with db.uow.transaction() as tx:
        await intake.record_medical_screening(tx, pid, {q.code: False for q in intake.rules.questions}, None)

    blood_pressure_written, commit_blood_pressure = asyncio.Event(), asyncio.Event()

    async def blood_pressure() -> None:
        async with db.uow.transaction() as tx:
            await intake.record_blood_pressure(tx, pid, systolic=118, diastolic=76, measured_at=datetime.now(UTC))
            blood_pressure_written.set()
            await commit_blood_pressure.wait()

    async def coverage() -> None:
        await blood_pressure_written.wait()
        async with db.uow.transaction() as tx:
            await intake.declare_coverage(tx, pid, kind=CoverageKind.self_pay, payer_id=None, member_id=None, plan=None)

    first = asyncio.create_task(blood_pressure())
    second = asyncio.create_task(coverage())
    # Let the coverage transaction either finish or queue behind the first one's lock before that one commits.
    await eventually(lambda: second.done() or _waiting_on_a_lock(db.admin_dsn), what="coverage finished or waiting")
    commit_blood_pressure.set()
    await asyncio.gather(first, second)

    async with db.sessions() as session:
        outcomes = (
            await session.execute(
                select(eligibility_decisions.c.outcome).where(eligibility_decisions.c.patient_id == pid)
            )
        ).scalars()
        assert list(outcomes) == ["eligible"]


async def _waiting_on_a_lock(admin_dsn: str) -> bool:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return bool(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'", DATABASE
            )
        )
    finally:
        await conn.close()
