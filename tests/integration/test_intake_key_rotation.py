"""Intake's PHI key rotation against real PostgreSQL: after a re-encryption run the old key can go."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet, InvalidToken

from carecoord_devstack.stack import Stack
import carecoord_intake
from carecoord_intake import key_rotation, rules
from carecoord_intake.intake import Demographics, Intake
from carecoord_intake.models import messaging, patients
from carecoord_intake.phi import PhiCipher
from carecoord_shared.contracts.common import CoverageKind
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head

WHO = Demographics(
    first_name="Ottoline",
    last_name="Brackenridge",
    date_of_birth=date(1971, 5, 2),
    sex="F",
    email="ob@example.org",
    phone="+1 212 555 0199",
    address={"line1": "9 Pine St", "line2": None, "city": "Albany", "state": "NY", "postal_code": "12207"},
)


async def test_reencryption_moves_every_phi_value_to_the_new_key(stack: Stack) -> None:
    database = "intake_key_rotation"
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f'CREATE DATABASE {database} OWNER "intake"')
    finally:
        await conn.close()
    url = stack.postgres.service_url("intake").rsplit("/", 1)[0] + f"/{database}"
    await asyncio.to_thread(upgrade_to_head, url, Path(carecoord_intake.__file__).parent / "migrations")

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    engine = create_engine(url)
    sessions = create_sessions(engine)
    try:
        before = Intake(rules=rules.load(), cipher=PhiCipher([old]), served_states=frozenset({"NY"}))
        uow = UnitOfWork(sessions, messaging, "intake")
        registered = []
        for n in range(3):
            async with uow.transaction() as tx:
                row, _ = await before.register(tx, external_id=f"rot-{n}", state_of_residence="NY", time_zone="America/New_York", who=WHO)
                await before.declare_coverage(tx, row.patient_id, kind=CoverageKind.insurance, payer_id="EMPIRE", member_id="MB-1", plan=None)
            registered.append(row.patient_id)

        rewritten = await key_rotation.reencrypt_all(sessions, PhiCipher([new, old]), batch_size=2)
        assert rewritten == 6, "three patients and three coverages"

        after = Intake(rules=rules.load(), cipher=PhiCipher([new]), served_states=frozenset({"NY"}))
        async with sessions() as session:
            rows = (await session.execute(patients.select().where(patients.c.patient_id.in_(registered)))).all()
        assert [after.demographics(r) for r in rows] == [WHO] * 3
        with pytest.raises(InvalidToken):
            PhiCipher([old]).decrypt(rows[0].first_name_enc)
    finally:
        await engine.dispose()

