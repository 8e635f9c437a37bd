"""A plan's status change and the transition that records it: written together, in one statement.

Through dosing's consumer and handlers on a real PostgreSQL database (tests/service_harness.py):
safety's hold request pauses the plan, its release resumes it, and each change is one round trip
that updates the plan and inserts its transition row."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from carecoord_contracts.common import Indication, ReviewDecision
from carecoord_contracts.safety import TreatmentHoldReleased, TreatmentHoldRequested
from carecoord_devstack.stack import Stack
from carecoord_dosing import domain, plans
from carecoord_dosing.models import plan_transitions, treatment_plans
from tests.service_harness import ServiceHarness

RULES = domain.load_titration()


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_transitions_it") as harness:
        yield harness


@contextmanager
def statements(harness: ServiceHarness) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = harness.app.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


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
    with statements(dosing) as seen:
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
    with statements(dosing) as seen:
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
        with statements(dosing) as seen:
            await dosing.deliver(hold, patient_id=patient, producer="safety")
    assert _writes_of_the_plan(seen) == []
    transitions = await dosing.rows(select(plan_transitions.c.to_status).where(plan_transitions.c.plan_id == plan_id))
    assert sorted(t.to_status for t in transitions) == ["active", "paused"]
