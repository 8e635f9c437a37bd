"""The other services' write routes audit as safety's do: the allowed row commits with the change, once.

Dosing's plan and dose decisions, intake's submissions and billing's payments (and scheduling's
appointment changes) check access and write the audit row in the change's own transaction
(Access.transaction): one commit a request instead of two. What that must keep: a refusal still commits
its denied row (and nothing else), and a change that fails after the check (a cap, a rule: 409/422)
still leaves its allowed row.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, select

from carecoord_billing.models import audit as billing_audit
from carecoord_billing.models import invoices
from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_contracts.intake import CoverageDeclared
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from carecoord_dosing.domain import load_titration
from carecoord_dosing.models import audit as dosing_audit
from carecoord_dosing.models import dose_proposals, treatment_plans
from carecoord_intake.models import audit as intake_audit
from carecoord_intake.models import blood_pressure_readings
from carecoord_scheduling.models import appointments
from carecoord_scheduling.models import audit as scheduling_audit
from tests.auth import SERVICE_TOKEN, clinician_token, patient_token
from tests.care import join_care_team
from tests.e2e.intake_journeys import eligible_steps, registration
from tests.integration.test_safety_report_path import traffic, xmin
from tests.integration.test_scheduling_booking import DAYTIME, book, day_after_tomorrow, put_clinician, register
from tests.service_harness import ServiceHarness

COURSE = {
    "starting_dose_mg": 100,
    "max_dose_mg": 300,
    "max_step_mg": 50,
    "planned_sessions": 6,
    "indication": "depression",
    "diagnosis_codes": ["F33.1"],
}


@pytest.fixture(scope="module")
async def dosing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "dosing", database="dosing_write_routes") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


@pytest.fixture(scope="module")
async def intake(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "intake", database="intake_write_routes") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def audit_rows(harness: ServiceHarness, table: Table, patient: uuid.UUID) -> list[Any]:
    return await harness.rows(
        select(table.c.action, table.c.resource, table.c.outcome, table.c.resource_id, xmin(table))
        .where(table.c.patient_id == patient)
        .order_by(table.c.id)
    )


async def _pending_proposal(dosing: ServiceHarness, patient: uuid.UUID) -> tuple[str, str]:
    """An active plan after one dosing session: the next dose proposed, waiting for a clinician."""
    plan = await dosing.http.post("/v1/plans", json={"patient_id": str(patient), "clinician_id": "dr-a", **COURSE})
    plan_id = plan.json()["plan_id"]
    assert (await dosing.http.post(f"/v1/plans/{plan_id}/activate", json={"clinician_id": "dr-a"})).status_code == 200
    completed = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-a",
        started_at=datetime.now(UTC) - timedelta(hours=3),
        ended_at=datetime.now(UTC) - timedelta(hours=1),
        plan_id=plan_id,
    )
    await dosing.deliver(completed, patient_id=patient, producer="scheduling")
    [(proposal_id,)] = await dosing.rows(
        select(dose_proposals.c.proposal_id).where(
            dose_proposals.c.plan_id == uuid.UUID(plan_id), dose_proposals.c.status == "proposed"
        )
    )
    return plan_id, str(proposal_id)


# --- dosing ------------------------------------------------------------------------------------------


async def test_creating_a_plan_commits_once_with_its_audit_row(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    body = {"patient_id": str(patient), "clinician_id": "dr-a", **COURSE}
    with traffic(dosing) as sent:
        response = await dosing.http.post("/v1/plans", json=body)
    assert response.status_code == 201, response.text
    assert sent.commits == 1, sent.statements
    [row] = await audit_rows(dosing, dosing_audit, patient)
    assert (row.action, row.resource, row.outcome) == ("create", "plan", "allowed")
    [(plan_xmin,)] = await dosing.rows(select(xmin(treatment_plans)).where(treatment_plans.c.patient_id == patient))
    assert row.xmin == plan_xmin  # written by the plan's own transaction


async def test_approving_a_dose_commits_once_with_its_audit_row(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    _, proposal_id = await _pending_proposal(dosing, patient)
    with traffic(dosing) as sent:
        response = await dosing.http.post(f"/v1/dose-proposals/{proposal_id}/approve", json={"clinician_id": "dr-a"})
    assert response.status_code == 200, response.text
    assert sent.commits == 1, sent.statements
    row = (await audit_rows(dosing, dosing_audit, patient))[-1]
    assert (row.action, row.resource, row.outcome, row.resource_id) == (
        "approve",
        "dose-proposal",
        "allowed",
        proposal_id,
    )
    [(approved_xmin,)] = await dosing.rows(
        select(xmin(dose_proposals)).where(dose_proposals.c.proposal_id == uuid.UUID(proposal_id))
    )
    assert row.xmin == approved_xmin


async def test_a_refused_plan_commits_its_denied_row_and_nothing_else(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()  # dosing has not learnt their state: a clinician is refused
    dr = dosing.client(clinician_token("dr-co", ["CO"]))
    with traffic(dosing) as sent:
        response = await dr.post("/v1/plans", json={"patient_id": str(patient), "clinician_id": "dr-co", **COURSE})
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert sent.commits == 1 and sent.writes == ["INSERT INTO audit_log"], sent.statements
    [row] = await audit_rows(dosing, dosing_audit, patient)
    assert (row.action, row.resource, row.outcome) == ("create", "plan", "denied")
    assert not await dosing.rows(select(treatment_plans.c.plan_id).where(treatment_plans.c.patient_id == patient))


async def test_a_plan_above_the_program_cap_is_refused_and_its_allowed_row_stays(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    cap = load_titration().program_max_dose_mg
    assert cap is not None
    body = {"patient_id": str(patient), "clinician_id": "dr-a", **COURSE, "max_dose_mg": cap + 1}
    response = await dosing.http.post("/v1/plans", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["reason"] == "max_dose_above_program_maximum"
    rows = await audit_rows(dosing, dosing_audit, patient)
    assert [(r.action, r.resource, r.outcome) for r in rows] == [("create", "plan", "allowed")]
    assert not await dosing.rows(select(treatment_plans.c.plan_id).where(treatment_plans.c.patient_id == patient))


async def test_a_dose_above_the_cap_is_refused_and_its_allowed_row_stays(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    _, proposal_id = await _pending_proposal(dosing, patient)
    response = await dosing.http.post(
        f"/v1/dose-proposals/{proposal_id}/approve", json={"clinician_id": "dr-a", "dose_mg": COURSE["max_dose_mg"] + 1}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "limit_exceeded"
    row = (await audit_rows(dosing, dosing_audit, patient))[-1]
    assert (row.action, row.outcome, row.resource_id) == ("approve", "allowed", proposal_id)
    [(status,)] = await dosing.rows(
        select(dose_proposals.c.status).where(dose_proposals.c.proposal_id == uuid.UUID(proposal_id))
    )
    assert status == "proposed"  # nothing changed


async def test_a_decision_on_an_unknown_plan_is_404_and_unaudited(dosing: ServiceHarness) -> None:
    """The lookup comes before the check, as before: no patient, so no audit row and no transaction."""
    with traffic(dosing) as sent:
        response = await dosing.http.post(f"/v1/plans/{uuid.uuid4()}/activate", json={"clinician_id": "dr-a"})
    assert response.status_code == 404
    assert sent.commits == 0 and sent.writes == [], sent.statements


async def test_a_clinician_acting_in_another_name_is_refused_before_any_lookup(dosing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    dr = dosing.client(clinician_token("dr-co", ["CO"]))
    response = await dr.post("/v1/plans", json={"patient_id": str(patient), "clinician_id": "dr-other", **COURSE})
    assert response.status_code == 403
    assert not await audit_rows(dosing, dosing_audit, patient)  # refused by route, not about this patient


async def test_authorising_a_session_commits_once_with_its_audit_row(dosing: ServiceHarness) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    with traffic(dosing) as sent:
        response = await dosing.http.post(
            f"/v1/dosing-sessions/{appointment}/authorise", json={"patient_id": str(patient)}
        )
    assert response.status_code == 200, response.text
    assert not response.json()["authorised"]  # no plan: refused, and the refusal recorded
    assert sent.commits == 1, sent.statements
    [row] = await audit_rows(dosing, dosing_audit, patient)
    assert (row.action, row.resource, row.outcome, row.resource_id) == (
        "authorise",
        "dosing-session",
        "allowed",
        str(appointment),
    )


# --- intake ------------------------------------------------------------------------------------------


async def _registered(intake: ServiceHarness) -> uuid.UUID:
    response = await intake.http.post("/v1/patients", json=registration(external_id=f"ext-{uuid.uuid4().hex}"))
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["patient_id"])


def _blood_pressure() -> dict[str, Any]:
    return {"systolic": 122, "diastolic": 78, "measured_at": datetime.now(UTC).isoformat()}


async def test_a_blood_pressure_reading_commits_once_with_its_audit_row(intake: ServiceHarness) -> None:
    patient = await _registered(intake)
    client = intake.client(patient_token(patient))
    with traffic(intake) as sent:
        response = await client.post(f"/v1/patients/{patient}/blood-pressure", json=_blood_pressure())
    assert response.status_code == 201, response.text
    assert sent.commits == 1, sent.statements
    row = (await audit_rows(intake, intake_audit, patient))[-1]
    assert (row.action, row.resource, row.outcome) == ("submit", "blood-pressure", "allowed")
    [(reading_xmin,)] = await intake.rows(
        select(xmin(blood_pressure_readings)).where(blood_pressure_readings.c.patient_id == patient)
    )
    assert row.xmin == reading_xmin


async def test_a_refused_submission_commits_its_denied_row_and_nothing_else(intake: ServiceHarness) -> None:
    patient = await _registered(intake)
    someone_else = intake.client(patient_token(uuid.uuid4()))
    with traffic(intake) as sent:
        response = await someone_else.post(f"/v1/patients/{patient}/blood-pressure", json=_blood_pressure())
    assert response.status_code == 403
    assert sent.commits == 1 and sent.writes == ["INSERT INTO audit_log"], sent.statements
    row = (await audit_rows(intake, intake_audit, patient))[-1]
    assert (row.action, row.resource, row.outcome) == ("submit", "blood-pressure", "denied")
    assert not await intake.rows(
        select(blood_pressure_readings.c.reading_id).where(blood_pressure_readings.c.patient_id == patient)
    )


async def test_a_submission_after_the_decision_is_409_and_its_allowed_row_stays(intake: ServiceHarness) -> None:
    patient = await _registered(intake)
    for method, path, body in eligible_steps():
        response = await intake.http.request(method, f"/v1/patients/{patient}{path}", json=body)
        assert response.status_code == 201, response.text
    before = len(await audit_rows(intake, intake_audit, patient))
    late = await intake.http.post(f"/v1/patients/{patient}/blood-pressure", json=_blood_pressure())
    assert late.status_code == 409, late.text
    rows = await audit_rows(intake, intake_audit, patient)
    assert len(rows) == before + 1
    assert (rows[-1].action, rows[-1].resource, rows[-1].outcome) == ("submit", "blood-pressure", "allowed")


# --- billing -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def billing(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "billing", database="billing_write_routes") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def _invoiced(billing: ServiceHarness, patient: uuid.UUID) -> tuple[str, int]:
    """A self-pay patient's visit, invoiced: (invoice id, cents due)."""
    declared = CoverageDeclared(
        coverage_id=uuid.uuid4(), kind=CoverageKind.self_pay, payer_id=None, state_of_residence="TX"
    )
    await billing.deliver(declared, patient_id=patient, producer="intake")
    started = datetime.now(UTC) - timedelta(hours=2)
    visit = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.follow_up,
        clinician_id="dr-a",
        started_at=started,
        ended_at=started + timedelta(minutes=50),
        video=True,
    )
    await billing.deliver(visit, patient_id=patient, producer="scheduling")
    [invoice] = await billing.rows(
        select(invoices.c.invoice_id, invoices.c.amount_cents).where(invoices.c.patient_id == patient)
    )
    return str(invoice.invoice_id), invoice.amount_cents


def _payment(cents: int) -> dict[str, Any]:
    return {"payment_id": str(uuid.uuid4()), "amount_cents": cents, "method": "card"}


async def test_paying_an_invoice_commits_once_with_its_audit_row(billing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    invoice_id, due = await _invoiced(billing, patient)
    client = billing.client(patient_token(patient))
    with traffic(billing) as sent:
        response = await client.post(f"/v1/invoices/{invoice_id}/payments", json=_payment(due))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "paid"
    assert sent.commits == 1, sent.statements
    [row] = await audit_rows(billing, billing_audit, patient)
    assert (row.action, row.resource, row.outcome, row.resource_id) == ("pay", "invoice", "allowed", invoice_id)
    [(paid_xmin,)] = await billing.rows(select(xmin(invoices)).where(invoices.c.invoice_id == uuid.UUID(invoice_id)))
    assert row.xmin == paid_xmin


async def test_a_payment_beyond_what_is_due_is_409_and_its_allowed_row_stays(billing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    invoice_id, due = await _invoiced(billing, patient)
    response = await billing.client(patient_token(patient)).post(
        f"/v1/invoices/{invoice_id}/payments", json=_payment(due + 1)
    )
    assert response.status_code == 409, response.text
    rows = await audit_rows(billing, billing_audit, patient)
    assert [(r.action, r.outcome) for r in rows] == [("pay", "allowed")]


async def test_a_refused_payment_commits_its_denied_row_and_nothing_else(billing: ServiceHarness) -> None:
    patient = uuid.uuid4()
    invoice_id, due = await _invoiced(billing, patient)
    with traffic(billing) as sent:
        response = await billing.client(patient_token(uuid.uuid4())).post(
            f"/v1/invoices/{invoice_id}/payments", json=_payment(due)
        )
    assert response.status_code == 403
    assert sent.commits == 1 and sent.writes == ["INSERT INTO audit_log"], sent.statements
    [row] = await audit_rows(billing, billing_audit, patient)
    assert (row.action, row.outcome) == ("pay", "denied")


# --- scheduling ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_write_routes") as harness:
        harness.client(SERVICE_TOKEN)
        yield harness


async def _booked(scheduling: ServiceHarness, state: str) -> tuple[uuid.UUID, str, str]:
    """(patient, clinician, appointment id): a follow-up booked for the day after tomorrow at ten."""
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    patient = await register(scheduling, state)
    booked = await book(scheduling, patient, clinician, day_after_tomorrow().replace(hour=10))
    assert booked.status_code == 201, booked.text
    return patient, clinician, booked.json()["appointment_id"]


async def test_booking_an_appointment_commits_once_with_its_audit_row(scheduling: ServiceHarness) -> None:
    state = "OR"
    clinician = await put_clinician(scheduling, "psychiatric_clinician", [state], DAYTIME)
    patient = await register(scheduling, state)
    with traffic(scheduling) as sent:
        booked = await book(scheduling, patient, clinician, day_after_tomorrow().replace(hour=10))
    assert booked.status_code == 201, booked.text
    assert sent.commits == 1, sent.statements
    [row] = await audit_rows(scheduling, scheduling_audit, patient)
    assert (row.action, row.resource, row.outcome) == ("book", "appointment", "allowed")
    # The appointment's insert runs in a savepoint (its own subtransaction id, so no xmin to compare): the
    # one commit above is what wrote both.
    assert await scheduling.rows(select(appointments.c.appointment_id).where(appointments.c.patient_id == patient))


async def test_cancelling_commits_once_and_a_second_cancel_is_409_with_its_allowed_row(
    scheduling: ServiceHarness,
) -> None:
    patient, _, appointment_id = await _booked(scheduling, "WA")
    with traffic(scheduling) as sent:
        cancelled = await scheduling.http.post(
            f"/v1/appointments/{appointment_id}/cancel", json={"reason": "patient_request"}
        )
    assert cancelled.status_code == 200, cancelled.text
    assert sent.commits == 1, sent.statements
    again = await scheduling.http.post(f"/v1/appointments/{appointment_id}/cancel", json={})
    assert again.status_code == 409 and "only a booked appointment can be cancelled" in again.json()["detail"]
    rows = await audit_rows(scheduling, scheduling_audit, patient)
    assert [(r.action, r.outcome, r.resource_id) for r in rows] == [
        ("book", "allowed", None),
        ("cancel", "allowed", appointment_id),
        ("cancel", "allowed", appointment_id),
    ]


async def test_another_clinician_completing_an_appointment_is_refused_after_the_patient_check(
    scheduling: ServiceHarness,
) -> None:
    """The patient check (licensed: allowed, audited) comes first, then "its own clinician": as before."""
    patient, _, appointment_id = await _booked(scheduling, "ID")
    # On the patient's care team (so the patient check lets them through), but not the appointment's clinician.
    await join_care_team(scheduling, patient, "dr-other-id")
    other = scheduling.client(clinician_token("dr-other-id", ["ID"]))
    response = await other.post(f"/v1/appointments/{appointment_id}/complete", json={})
    assert response.status_code == 403
    assert "in their own name" in response.json()["detail"]
    rows = await audit_rows(scheduling, scheduling_audit, patient)
    assert [(r.action, r.outcome) for r in rows] == [("book", "allowed"), ("complete", "allowed")]
    [(status,)] = await scheduling.rows(
        select(appointments.c.status).where(appointments.c.appointment_id == uuid.UUID(appointment_id))
    )
    assert status == "booked"
