"""The statements billing's handlers issue, through its consumer on a real PostgreSQL database
(tests/service_harness.py): the patient and coverage it keeps (upserts), the diagnosis it records once per
plan and the charge it makes once per appointment are written by statements SQLAlchemy compiles once,
not per event (the PostgreSQL dialect's insert has no cache key)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine.interfaces import CacheStats

from carecoord_billing.models import charges, coverages, patients, plan_diagnoses
from carecoord_contracts.common import AppointmentType, CoverageKind, Indication
from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import CoverageDeclared, PatientRegistered
from carecoord_contracts.scheduling import AppointmentCancelled, AppointmentCompleted
from carecoord_devstack.stack import Stack
from tests.service_harness import ServiceHarness

STARTED = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
async def billing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "billing", database="billing_statements_it") as harness:
        yield harness


def _completed(appointment_id: uuid.UUID) -> AppointmentCompleted:
    return AppointmentCompleted(
        appointment_id=appointment_id,
        appointment_type=AppointmentType.follow_up,
        clinician_id="dr-lee",
        started_at=STARTED,
        ended_at=STARTED + timedelta(minutes=50),
        video=True,
    )


async def test_patients_coverage_diagnoses_and_charges_are_written_by_statements_compiled_once(
    billing: ServiceHarness,
) -> None:
    patients_ids = [uuid.uuid4(), uuid.uuid4()]
    appointments = [uuid.uuid4(), uuid.uuid4()]
    plan_ids = [uuid.uuid4(), uuid.uuid4()]
    cache: list[tuple[str, Any]] = []
    with billing.statements(cache):
        for patient, appointment, plan_id in zip(patients_ids, appointments, plan_ids, strict=True):
            registered = PatientRegistered(state_of_residence="CA", time_zone="America/Los_Angeles")
            await billing.deliver(registered, patient_id=patient, producer="intake")
            declared = CoverageDeclared(
                coverage_id=uuid.uuid4(), kind=CoverageKind.self_pay, payer_id=None, state_of_residence="CA"
            )
            await billing.deliver(declared, patient_id=patient, producer="intake")
            plan = TreatmentPlanCreated(
                plan_id=plan_id,
                starting_dose_mg=100,
                max_dose_mg=300,
                max_step_mg=50,
                planned_sessions=6,
                indication=Indication.depression,
                diagnosis_codes=["F33.1"],
            )
            await billing.deliver(plan, patient_id=patient, producer="dosing")
            await billing.deliver(_completed(appointment), patient_id=patient, producer="scheduling")
    for table in ("patients", "coverages", "plan_diagnoses", "charges"):
        inserts = [(sql, hit) for sql, hit in cache if sql.startswith(f"INSERT INTO {table} ")]
        assert len(inserts) == 2 and all("ON CONFLICT" in sql for sql, _ in inserts), (table, inserts)
        # The first patient's statement compiled it; the second's came from the cache.
        assert inserts[1][1] is CacheStats.CACHE_HIT, (table, inserts)

    # What they wrote, typed as before.
    patient, appointment = patients_ids[1], appointments[1]
    [charge] = await billing.rows(select(charges).where(charges.c.patient_id == patient))
    assert charge.appointment_id == appointment and charge.service_date.isoformat() == "2026-11-19"
    assert [(line["cpt"], line["cents"]) for line in charge.lines] == [("99214", 22000), ("90833", 10000)]
    assert (charge.place_of_service, charge.modifiers, charge.amount_cents) == ("10", ["95"], 32000)
    assert (charge.self_pay, charge.status) == (True, "invoiced")
    [created] = await billing.emitted("ChargeCreated", patient_id=patient)
    assert created["charge_id"] == str(charge.charge_id) and created["cpt_codes"] == ["99214", "90833"]
    [diagnosis] = await billing.rows(select(plan_diagnoses).where(plan_diagnoses.c.plan_id == plan_ids[1]))
    assert (diagnosis.patient_id, diagnosis.indication, diagnosis.diagnosis_codes) == (patient, "depression", ["F331"])

    # Redelivered under new event ids: still one charge, one diagnosis; a move and a new declaration update.
    await billing.deliver(_completed(appointment), patient_id=patient, producer="scheduling")
    assert len(await billing.rows(select(charges.c.charge_id).where(charges.c.patient_id == patient))) == 1
    [before] = await billing.rows(select(patients).where(patients.c.patient_id == patient))
    moved = PatientRegistered(state_of_residence="TX", time_zone="America/Chicago")
    await billing.deliver(moved, patient_id=patient, producer="intake")
    [after] = await billing.rows(select(patients).where(patients.c.patient_id == patient))
    assert (after.state_of_residence, after.time_zone) == ("TX", "America/Chicago")
    assert after.updated_at > before.updated_at
    insured = CoverageDeclared(
        coverage_id=uuid.uuid4(), kind=CoverageKind.insurance, payer_id="AETNA1", state_of_residence="TX"
    )
    await billing.deliver(insured, patient_id=patient, producer="intake")
    [coverage] = await billing.rows(select(coverages).where(coverages.c.patient_id == patient))
    assert (coverage.coverage_id, coverage.kind, coverage.payer_id) == (insured.coverage_id, "insurance", "AETNA1")
    assert (coverage.verification_status, coverage.verified_at) == ("unverified", None)


def _hold_cancelled(appointment_id: uuid.UUID) -> AppointmentCancelled:
    return AppointmentCancelled(
        appointment_id=appointment_id,
        appointment_type=AppointmentType.dosing_session,
        reason="treatment_hold",
        starts_at=STARTED,
    )


def _charge_statements(cache: list[tuple[str, Any]]) -> list[str]:
    return [sql for sql, _ in cache if " charges" in sql and "held_cancellations" not in sql]


async def test_a_hold_cancellation_voids_or_reads_the_charge_in_one_statement(billing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    declared = CoverageDeclared(coverage_id=uuid.uuid4(), kind=CoverageKind.self_pay, state_of_residence="CA")
    await billing.deliver(declared, patient_id=patient, producer="intake")
    never_charged, open_charge, claimed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for appointment in (open_charge, claimed):
        await billing.deliver(_completed(appointment), patient_id=patient, producer="scheduling")
    async with billing.uow.transaction() as tx:
        await tx.session.execute(update(charges).where(charges.c.appointment_id == claimed).values(status="claimed"))

    for appointment in (never_charged, open_charge, claimed):
        cache: list[tuple[str, Any]] = []
        with billing.statements(cache):
            await billing.deliver(_hold_cancelled(appointment), patient_id=patient, producer="scheduling")
        # The void and, when there was none, the charge's status: one statement, whatever there was to void.
        [statement] = _charge_statements(cache)
        assert statement.startswith("WITH voided AS (UPDATE charges SET status=")

    statuses = {
        row.appointment_id: row.status
        for row in await billing.rows(
            select(charges.c.appointment_id, charges.c.status).where(charges.c.patient_id == patient)
        )
    }
    assert statuses == {open_charge: "voided", claimed: "claimed"}  # a claimed charge is the biller's to correct
    [voided] = await billing.emitted("ChargeVoided", patient_id=patient)
    assert voided["appointment_id"] == str(open_charge) and voided["reason"] == "treatment_hold"
    # Each cancellation is remembered: a late completion of any of them is not charged.
    await billing.deliver(_completed(never_charged), patient_id=patient, producer="scheduling")
    assert never_charged not in {
        row.appointment_id
        for row in await billing.rows(select(charges.c.appointment_id).where(charges.c.patient_id == patient))
    }
