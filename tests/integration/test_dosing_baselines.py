"""Titration measures response against intake's baseline on the plan's indication's instrument, whatever
order intake's and safety's topics arrive in (issue 20, item 5). Dosing's real handlers in-process,
against a fresh database on the test stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from carecoord_contracts import Envelope, Event, topic_for_event
from carecoord_contracts.common import AppointmentType, Indication, Instrument
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.safety import MoodCheckInRecorded
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_dosing import domain, handlers, outcomes, plans
from carecoord_dosing.models import dose_proposals
from carecoord_shared.messaging.consumer import EventConsumer, Outcome
from carecoord_shared.messaging.deadletter import DeadLetterer
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.persistence import create_engine, create_sessions, upgrade_to_head
from tests.services import built

definition = built("dosing")

RULES = domain.load_titration()


@dataclass
class Dosing:
    uow: UnitOfWork
    consumer: EventConsumer

    async def publish(
        self, event: Event, patient: uuid.UUID, producer: str, occurred_at: datetime | None = None
    ) -> None:
        envelope = Envelope.wrap(event, patient_id=patient, producer=producer, occurred_at=occurred_at)
        record = SimpleNamespace(
            value=envelope.model_dump_json().encode(),
            key=envelope.key,
            topic=topic_for_event(envelope.type).name,
            partition=0,
            offset=0,
            headers=[],
        )
        assert await self.consumer.handle(record) is Outcome.processed  # type: ignore[arg-type]

    async def active_plan(self, patient: uuid.UUID, indication: Indication, codes: list[str]) -> uuid.UUID:
        async with self.uow.transaction() as tx:
            plan_id = await plans.create_plan(
                tx,
                patient_id=patient,
                actor="dr-lee",
                rules=RULES,
                indication=indication,
                diagnosis_codes=codes,
                starting_dose_mg=100,
                max_dose_mg=300,
                max_step_mg=50,
                planned_sessions=6,
                cadence_days=7,
            )
        async with self.uow.transaction() as tx:
            await plans.activate_plan(tx, plan_id, actor="dr-lee", rules=RULES)
        return plan_id

    async def next_proposal(self, plan_id: uuid.UUID) -> Any:
        async with self.uow.sessions() as s:
            return (
                await s.execute(
                    select(dose_proposals).where(
                        dose_proposals.c.plan_id == plan_id, dose_proposals.c.status == "proposed"
                    )
                )
            ).one()


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[Dosing]:
    url = await scratch_database(stack, "dosing_baselines", "dosing")
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    engine = create_engine(url)
    uow = UnitOfWork(create_sessions(engine), definition.tables, "dosing")

    async def dead_letter(topic: str, value: bytes, key: bytes | None, headers: dict[str, str]) -> None:
        raise AssertionError(f"dead-lettered on {topic}: {headers}")

    consumer = EventConsumer("dosing", uow, DeadLetterer("dosing", dead_letter))
    handlers.register_with(RULES, outcomes.load_outcomes())(consumer)
    yield Dosing(uow, consumer)
    await engine.dispose()


def scored(instrument: Instrument, total: int) -> AssessmentScored:
    return AssessmentScored(assessment_id=uuid.uuid4(), instrument=instrument, total=total, severity_band="severe")


def check_in(**totals: int) -> MoodCheckInRecorded:
    return MoodCheckInRecorded(checkin_id=uuid.uuid4(), **totals)


async def session_done(dosing: Dosing, patient: uuid.UUID) -> None:
    started = datetime.now(UTC) - timedelta(hours=3)
    done = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-lee",
        started_at=started,
        ended_at=started + timedelta(hours=2),
    )
    await dosing.publish(done, patient, "scheduling")


@pytest.mark.parametrize(
    "baseline_first", [True, False], ids=["baseline_before_plan", "baseline_after_plan_and_check_in"]
)
async def test_a_ptsd_plan_measures_pcl5_against_the_intake_baseline_in_either_arrival_order(
    dosing: Dosing, baseline_first: bool
) -> None:
    patient = uuid.uuid4()
    intake_time = datetime.now(UTC) - timedelta(days=10)
    if baseline_first:
        await dosing.publish(scored(Instrument.pcl5, 50), patient, "intake", intake_time)
    plan_id = await dosing.active_plan(patient, Indication.ptsd, ["F43.10"])
    # PHQ-9 unchanged (no response there), PCL-5 down 10 points from intake: a PTSD response.
    await dosing.publish(check_in(phq9_total=18, pcl5_total=40), patient, "safety")
    if not baseline_first:
        await dosing.publish(scored(Instrument.pcl5, 50), patient, "intake", intake_time)
    await dosing.publish(scored(Instrument.phq9, 18), patient, "intake", intake_time)
    await session_done(dosing, patient)

    proposal = await dosing.next_proposal(plan_id)
    assert (proposal.proposed_dose_mg, proposal.rationale) == (100, ["responding_keep_dose"])
    assert proposal.rule_version == "2026.12.0"


async def test_a_ptsd_plan_with_9_points_of_pcl5_drop_steps_up(dosing: Dosing) -> None:
    patient = uuid.uuid4()
    await dosing.publish(scored(Instrument.pcl5, 50), patient, "intake", datetime.now(UTC) - timedelta(days=3))
    plan_id = await dosing.active_plan(patient, Indication.ptsd, ["F43.10"])
    await dosing.publish(check_in(phq9_total=5, pcl5_total=41), patient, "safety")  # PHQ-9 would call it a response
    await session_done(dosing, patient)

    proposal = await dosing.next_proposal(plan_id)
    assert (proposal.proposed_dose_mg, proposal.rationale) == (150, ["inadequate_response_increase"])


async def test_without_an_intake_baseline_the_first_check_in_is_the_baseline_and_the_proposal_says_so(
    dosing: Dosing,
) -> None:
    patient = uuid.uuid4()
    await dosing.publish(scored(Instrument.phq9, 20), patient, "intake")  # not the plan's instrument
    plan_id = await dosing.active_plan(patient, Indication.ptsd, ["F43.10"])
    await dosing.publish(check_in(phq9_total=20, pcl5_total=50), patient, "safety")
    await dosing.publish(check_in(phq9_total=20, pcl5_total=39), patient, "safety")
    await session_done(dosing, patient)

    proposal = await dosing.next_proposal(plan_id)
    assert proposal.proposed_dose_mg == 100
    assert proposal.rationale == ["responding_keep_dose", "no_intake_baseline_first_checkin_used"]


async def test_the_plan_records_its_indication_and_diagnosis_codes(dosing: Dosing) -> None:
    patient = uuid.uuid4()
    plan_id = await dosing.active_plan(patient, Indication.anxiety, ["F41.1", "F43.10"])
    async with dosing.uow.sessions() as s:
        row = (
            await s.execute(
                select(definition.metadata.tables["treatment_plans"]).where(
                    definition.metadata.tables["treatment_plans"].c.plan_id == plan_id
                )
            )
        ).one()
        outbox = (
            (
                await s.execute(
                    select(definition.tables.outbox.c.envelope).where(definition.tables.outbox.c.key == str(patient))
                )
            )
            .scalars()
            .all()
        )
    assert (row.indication, row.diagnosis_codes) == ("anxiety", ["F411", "F4310"])
    [created] = [e for e in outbox if e["type"] == "TreatmentPlanCreated"]
    assert created["payload"]["indication"] == "anxiety" and created["payload"]["diagnosis_codes"] == ["F411", "F4310"]
