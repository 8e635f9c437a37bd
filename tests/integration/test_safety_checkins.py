"""Mood check-ins against real PostgreSQL: what safety records and announces for each instrument."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from carecoord_contracts.patient_app import MoodCheckInSubmitted
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_safety import observations, rules
from carecoord_safety.models import messaging, mood_checkins
from carecoord_safety.schemas import MoodCheckInIn
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.services import built

definition = built("safety")

RULES = rules.load()
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
async def uow(stack: Stack) -> AsyncIterator[UnitOfWork]:
    url = await scratch_database(stack, "safety_checkins", "safety")
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    engine = create_engine(url)
    yield UnitOfWork(create_sessions(engine), messaging, "safety")
    await engine.dispose()


async def test_a_gad7_check_in_is_scored_kept_and_announced_for_an_anxiety_plans_titration(uow: UnitOfWork) -> None:
    patient, checkin = uuid.uuid4(), uuid.uuid4()
    submitted = MoodCheckInSubmitted(checkin_id=checkin, gad7_items=[3, 2, 2, 1, 1, 0, 0], answered_at=NOW)
    async with uow.transaction() as tx:
        await observations.record_checkin(
            tx, RULES, patient_id=patient, observation=submitted, source="patient-app", now=NOW
        )
    async with uow.sessions() as s:
        row = (await s.execute(select(mood_checkins).where(mood_checkins.c.checkin_id == checkin))).one()
        envelope = (
            await s.execute(
                select(messaging.outbox.c.envelope).where(
                    messaging.outbox.c.event_type == "MoodCheckInRecorded", messaging.outbox.c.key == str(patient)
                )
            )
        ).scalar_one()
    assert (row.gad7_items, row.gad7_total, row.phq9_total) == ([3, 2, 2, 1, 1, 0, 0], 9, None)
    assert envelope["payload"]["gad7_total"] == 9


def test_the_api_takes_a_check_in_with_gad7_alone_and_bounds_its_answers() -> None:
    base = {"patient_id": str(uuid.uuid4())}
    assert MoodCheckInIn.model_validate({**base, "gad7_items": [0] * 7}).gad7_items == [0] * 7
    for bad in ([0] * 6, [0] * 8, [4, 0, 0, 0, 0, 0, 0]):
        with pytest.raises(ValidationError):
            MoodCheckInIn.model_validate({**base, "gad7_items": bad})
    with pytest.raises(ValidationError, match="gad7_items"):
        MoodCheckInIn.model_validate(base)
