"""Idempotency-Key beyond safety: each service has its own idempotency_keys table and claims a key in the
change's own transaction, so a retried create or decision answers the first outcome there too. Dosing (a
plan created, then a decision on it) and intake (a registration, which holds PHI) on their real apps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from carecoord_devstack.stack import Stack
from carecoord_dosing.models import jurisdictions, treatment_plans
from carecoord_intake.models import patients
from tests.auth import SERVICE_TOKEN
from tests.e2e.intake_journeys import registration
from tests.plans import COURSE
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_idempotency") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "intake", database="intake_idempotency") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"ui-{uuid.uuid4()}"}


async def test_dosing_answers_a_retried_plan_and_activation_with_their_first_outcomes(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    async with dosing.uow.sessions.begin() as session:
        await session.execute(jurisdictions.insert().values(patient_id=patient, state_of_residence="CO"))
    body, create = {"patient_id": str(patient), "clinician_id": "dr-idem", **COURSE}, key()
    first = await dosing.http.post("/v1/plans", json=body, headers=create)
    again = await dosing.http.post("/v1/plans", json=body, headers=create)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    [count] = await dosing.rows(
        select(func.count()).select_from(treatment_plans).where(treatment_plans.c.patient_id == patient)
    )
    assert count[0] == 1, "one plan, not a 409 for a second live one"

    plan_id, decide = first.json()["plan_id"], key()
    activated = await dosing.http.post(
        f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-idem"}, headers=decide
    )
    retried = await dosing.http.post(f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-idem"}, headers=decide)
    assert activated.status_code == retried.status_code == 200, retried.text
    assert retried.json() == activated.json() and retried.json()["status"] == "active"
    assert len(await dosing.emitted("TreatmentPlanActivated", patient_id=patient)) == 1
    unkeyed = await dosing.http.post(f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-idem"})
    assert unkeyed.status_code == 409, "without the key, activating an active plan is refused as before"


async def test_intake_answers_a_retried_registration_with_the_same_patient(intake: ServiceHarness) -> None:
    body, headers = registration(), key()
    first = await intake.http.post("/v1/patients", json=body, headers=headers)
    again = await intake.http.post("/v1/patients", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["patient_id"] == first.json()["patient_id"]
    [count] = await intake.rows(select(func.count()).select_from(patients))
    other = await intake.http.post("/v1/patients", json=registration(), headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused", other.text
    [after] = await intake.rows(select(func.count()).select_from(patients))
    assert after[0] == count[0], "the refused request registered no one"
