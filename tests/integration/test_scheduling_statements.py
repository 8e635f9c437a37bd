"""The statements scheduling's handlers issue, through its consumer on a real PostgreSQL database
(tests/service_harness.py): the patient it remembers (an upsert) and the plan it records once per id are
written by statements SQLAlchemy compiles once, not per event (the dialect's insert has no cache key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine.interfaces import CacheStats

from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import PatientRegistered
from carecoord_devstack.stack import Stack
from carecoord_scheduling.clinicians import put_clinician
from carecoord_scheduling.models import clinicians, patients, plans
from carecoord_scheduling.schemas import ClinicianIn, Window
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_statements_it") as harness:
        yield harness


def _plan(plan_id: uuid.UUID, sessions: int) -> TreatmentPlanCreated:
    return TreatmentPlanCreated(
        plan_id=plan_id, starting_dose_mg=100, max_dose_mg=300, max_step_mg=50, planned_sessions=sessions
    )


async def test_patients_and_plans_are_written_by_statements_compiled_once(scheduling: ServiceHarness) -> None:
    patients_ids = [uuid.uuid4(), uuid.uuid4()]
    plan_ids = [uuid.uuid4(), uuid.uuid4()]
    cache: list[tuple[str, Any]] = []
    with scheduling.statements(cache):
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


async def test_a_clinicians_record_is_written_by_a_statement_compiled_once(scheduling: ServiceHarness) -> None:
    ids = [f"dr-{uuid.uuid4().hex[:12]}", f"dr-{uuid.uuid4().hex[:12]}"]
    body = ClinicianIn(
        role="psychiatric_clinician",
        time_zone="America/New_York",
        licensed_states=["NY"],
        weekly_availability=[Window(weekday=0, start="09:00", end="17:00")],
    )
    cache: list[tuple[str, Any]] = []
    with scheduling.statements(cache):
        for clinician_id in ids:
            await put_clinician(scheduling.uow, clinician_id, body)
    inserts = [(sql, hit) for sql, hit in cache if sql.startswith("INSERT INTO clinicians ")]
    assert len(inserts) == 2 and all("ON CONFLICT" in sql for sql, _ in inserts)
    assert inserts[1][1] is CacheStats.CACHE_HIT, inserts

    # Put again: the record is replaced (and its updated_at moves), not duplicated.
    [before] = await scheduling.rows(select(clinicians).where(clinicians.c.clinician_id == ids[1]))
    again = body.model_copy(update={"licensed_states": ["NY", "NJ"], "active": False})
    await put_clinician(scheduling.uow, ids[1], again)
    [after] = await scheduling.rows(select(clinicians).where(clinicians.c.clinician_id == ids[1]))
    assert (after.role, after.time_zone, after.licensed_states, after.active) == (
        "psychiatric_clinician",
        "America/New_York",
        ["NY", "NJ"],
        False,
    )
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
