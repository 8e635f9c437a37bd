"""The statements scheduling's handlers issue, through its consumer on a real PostgreSQL database
(tests/service_harness.py): the patient it remembers (an upsert) and the plan it records once per id are
written by statements SQLAlchemy compiles once, not per event (the dialect's insert has no cache key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine.interfaces import CacheStats

from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import PatientRegistered
from carecoord_devstack.stack import Stack
from carecoord_scheduling.models import patients, plans
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_statements_it") as harness:
        yield harness


@contextmanager
def statements(harness: ServiceHarness, cache: list[tuple[str, Any]]) -> Iterator[None]:
    """Each SQL statement the service sends while it is open, with its compiled-cache outcome, into ``cache``."""

    def note(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        cache.append((" ".join(statement.split()), context.cache_hit))

    engine = harness.app.runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _plan(plan_id: uuid.UUID, sessions: int) -> TreatmentPlanCreated:
    return TreatmentPlanCreated(
        plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=sessions
    )


async def test_patients_and_plans_are_written_by_statements_compiled_once(scheduling: ServiceHarness) -> None:
    patients_ids = [uuid.uuid4(), uuid.uuid4()]
    plan_ids = [uuid.uuid4(), uuid.uuid4()]
    cache: list[tuple[str, Any]] = []
    with statements(scheduling, cache):
        for patient, plan_id in zip(patients_ids, plan_ids, strict=True):
            registered = PatientRegistered(state_of_residence="CA", time_zone="America/Los_Angeles")
            await scheduling.deliver(registered, patient_id=patient, producer="intake")
            await scheduling.deliver(_plan(plan_id, 6), patient_id=patient, producer="dosing")
    for table in ("patients", "plans"):
        inserts = [hit for sql, hit in cache if sql.startswith(f"INSERT INTO {table} ")]
        assert len(inserts) == 2 and all(
            "ON CONFLICT" in sql for sql, _ in cache if sql.startswith(f"INSERT INTO {table} ")
        )
        # The first patient's statement compiled it; the second's came from the cache.
        assert inserts[1] is CacheStats.CACHE_HIT, (table, inserts)

    # What they wrote, as before: a move updates the patient (and its updated_at); a plan is recorded once.
    [before] = await scheduling.rows(select(patients).where(patients.c.patient_id == patients_ids[1]))
    moved = PatientRegistered(state_of_residence="NY", time_zone="America/New_York")
    await scheduling.deliver(moved, patient_id=patients_ids[1], producer="intake")
    [after] = await scheduling.rows(select(patients).where(patients.c.patient_id == patients_ids[1]))
    assert (after.state_of_residence, after.time_zone) == ("NY", "America/New_York")
    assert (after.eligibility_outcome, after.eligibility_sequence) == (None, None)
    assert after.updated_at > before.updated_at
    await scheduling.deliver(_plan(plan_ids[1], 3), patient_id=patients_ids[1], producer="dosing")
    [plan] = await scheduling.rows(select(plans).where(plans.c.plan_id == plan_ids[1]))
    assert (plan.patient_id, plan.planned_sessions, plan.cadence_days, plan.status) == (
        patients_ids[1],
        6,
        7,
        "draft",
    )
