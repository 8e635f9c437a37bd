"""The statements dosing's handlers issue, through its consumer on a real PostgreSQL database
(tests/service_harness.py): a plan's status change and the transition that records it are one
statement (safety's hold request pauses the plan, its release resumes it); the facts and holds it
records once per id are inserted by statements SQLAlchemy compiles once, not per event."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine.interfaces import CacheStats

from carecoord_contracts.common import Indication, Instrument, ReviewDecision
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.safety import SideEffectReported, TreatmentHoldReleased, TreatmentHoldRequested
from carecoord_devstack.stack import Stack
from carecoord_dosing import domain, plans
from carecoord_dosing.models import (
    intake_assessments,
    plan_transitions,
    safety_observations,
    treatment_holds,
    treatment_plans,
)
from tests.service_harness import ServiceHarness

RULES = domain.load_titration()


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_transitions_it") as harness:
        yield harness


async def _active_plan(dosing: ServiceHarness, patient: uuid.UUID) -> uuid.UUID:
    async with dosing.uow.transaction() as tx:
        plan_id = await plans.create_plan(
            tx,
            patient_id=patient,
            actor="dr-a",
            rules=RULES,
            indication=Indication.depression,
            diagnosis_codes=["F331"],
            starting_dose_mg=100,
            max_dose_mg=300,
            max_step_mg=50,
            planned_sessions=6,
            cadence_days=7,
        )
    async with dosing.uow.transaction() as tx:
        await plans.activate_plan(tx, plan_id, actor="dr-a", rules=RULES)
    return plan_id


def _writes_of_the_plan(seen: list[str]) -> list[str]:
    return [s for s in seen if "plan_transitions" in s or s.startswith("UPDATE treatment_plans")]


async def test_a_hold_pauses_the_plan_and_records_the_transition_in_one_statement(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    plan_id = await _active_plan(dosing, patient)
    hold = TreatmentHoldRequested(
        hold_id=uuid.uuid4(), review_id=uuid.uuid4(), reason="severe_side_effect", rule_version="2026.11.0"
    )
    with dosing.statements() as seen:
        await dosing.deliver(hold, patient_id=patient, producer="safety")
    [write] = _writes_of_the_plan(seen)
    assert write.startswith("WITH moved AS (UPDATE treatment_plans SET status=")
    assert "INSERT INTO plan_transitions" in write
    [status] = await dosing.rows(select(treatment_plans.c.status).where(treatment_plans.c.plan_id == plan_id))
    assert status.status == "paused"
    transitions = await dosing.rows(
        select(plan_transitions).where(plan_transitions.c.plan_id == plan_id).order_by(plan_transitions.c.id)
    )
    assert [(t.from_status, t.to_status, t.actor, t.reason) for t in transitions] == [
        ("draft", "active", "dr-a", "clinician_activated"),
        ("active", "paused", "safety", "severe_side_effect"),
    ]
    [paused] = await dosing.emitted("TreatmentPlanPaused", patient_id=patient)
    assert paused["hold_ids"] == [str(hold.hold_id)]

    # The release resumes it, the same way; a redelivered hold changes nothing (no statement writes the plan).
    release = TreatmentHoldReleased(
        hold_id=hold.hold_id, review_id=hold.review_id, decision=ReviewDecision.resume, decided_by="dr-lee"
    )
    with dosing.statements() as seen:
        await dosing.deliver(release, patient_id=patient, producer="safety")
    [write] = _writes_of_the_plan(seen)
    assert write.startswith("WITH moved AS (UPDATE treatment_plans SET status=")
    transitions = await dosing.rows(
        select(plan_transitions).where(plan_transitions.c.plan_id == plan_id).order_by(plan_transitions.c.id)
    )
    assert [(t.from_status, t.to_status, t.actor) for t in transitions][-1] == ("paused", "active", "dr-lee")
    [status] = await dosing.rows(select(treatment_plans.c.status).where(treatment_plans.c.plan_id == plan_id))
    assert status.status == "active"


async def test_a_second_hold_on_a_paused_plan_writes_no_transition(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    plan_id = await _active_plan(dosing, patient)
    for _ in range(2):
        hold = TreatmentHoldRequested(
            hold_id=uuid.uuid4(), review_id=uuid.uuid4(), reason="severe_side_effect", rule_version="2026.11.0"
        )
        with dosing.statements() as seen:
            await dosing.deliver(hold, patient_id=patient, producer="safety")
    assert _writes_of_the_plan(seen) == []
    transitions = await dosing.rows(select(plan_transitions.c.to_status).where(plan_transitions.c.plan_id == plan_id))
    assert sorted(t.to_status for t in transitions) == ["active", "paused"]


def _hold() -> TreatmentHoldRequested:
    return TreatmentHoldRequested(
        hold_id=uuid.uuid4(), review_id=uuid.uuid4(), reason="severe_side_effect", rule_version="2026.11.0"
    )


async def test_facts_and_holds_are_inserted_once_per_id_by_statements_compiled_once(dosing: ServiceHarness) -> None:
    patients = [uuid.uuid4(), uuid.uuid4()]
    cache: list[tuple[str, Any]] = []
    holds = [_hold(), _hold()]
    with dosing.statements(cache):
        for patient, hold in zip(patients, holds, strict=True):
            report = SideEffectReported(
                report_id=uuid.uuid4(), symptoms=["nausea", "chest_pain"], grade=3, escalated=True, rule_version="r1"
            )
            await dosing.deliver(report, patient_id=patient, producer="safety")
            await dosing.deliver(hold, patient_id=patient, producer="safety")
            scored = AssessmentScored(
                assessment_id=uuid.uuid4(), instrument=Instrument.phq9, total=18, severity_band="moderately_severe"
            )
            await dosing.deliver(scored, patient_id=patient, producer="intake")
    for table in ("safety_observations", "treatment_holds", "intake_assessments"):
        inserts = [hit for sql, hit in cache if sql.startswith(f"INSERT INTO {table} ")]
        assert len(inserts) == 2 and all(
            "ON CONFLICT" in sql for sql, _ in cache if sql.startswith(f"INSERT INTO {table} ")
        )
        # The first patient's statement compiled it; the second's came from the cache.
        assert inserts[1] is CacheStats.CACHE_HIT, (table, inserts)

    # What they wrote, typed as before (a JSON list of symptoms, a UUID, a timestamp).
    [observation] = await dosing.rows(
        select(safety_observations).where(safety_observations.c.patient_id == patients[1])
    )
    assert (observation.kind, observation.grade, observation.symptoms) == ("side_effect", 3, ["nausea", "chest_pain"])
    assert observation.emergency is False and observation.observed_at.tzinfo is not None
    [score] = await dosing.rows(select(intake_assessments).where(intake_assessments.c.patient_id == patients[1]))
    assert (score.instrument, score.total) == ("phq9", 18)

    # The same hold again in a new event (another review's request naming it): still one row, not an error.
    again = TreatmentHoldRequested(
        hold_id=holds[1].hold_id, review_id=uuid.uuid4(), reason="other_reason", rule_version="2026.11.0"
    )
    await dosing.deliver(again, patient_id=patients[1], producer="safety")
    [row] = await dosing.rows(select(treatment_holds).where(treatment_holds.c.hold_id == holds[1].hold_id))
    assert (row.review_id, row.reason, row.status) == (holds[1].review_id, "severe_side_effect", "open")
