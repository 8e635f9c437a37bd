"""Billing with every service as its own process: a course of dosing sessions with a
treatment hold in the middle bills the completed sessions and the review visit, and
nothing for the sessions the hold cancelled; claims go out as 837Ps and come back
paid or denied through the simulated payer.

Scheduling is being rebuilt, so the test plays scheduling's part by publishing
its events; intake's claim-demographics endpoint is a fake HTTP server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carecoord_contracts.common import AppointmentType, CoverageKind, Indication
from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_contracts.intake import CoverageDeclared, PatientRegistered
from carecoord_contracts.scheduling import AppointmentCancelled, AppointmentCompleted
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.fake_intake import FakeIntake, running_fake_intake
from tests.kafka_io import events_for, publish_event
from tests.x12_validators import pyx12_errors

pytestmark = pytest.mark.e2e

APPOINTMENTS = "scheduling.appointments"


@pytest.fixture(scope="module")
def billing_exchange(services: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeIntake, Path]]:
    """Billing restarted against a fake intake and its own clearinghouse folders; restored afterwards."""
    billing = services.services["billing"]
    folders = tmp_path_factory.mktemp("billing") / "clearinghouse"
    with running_fake_intake() as intake:
        billing.stop()
        billing.start(
            CARECOORD_INTAKE_URL=intake.url,
            CARECOORD_CLEARINGHOUSE_DIR=str(folders),
            CARECOORD_EXCHANGE_INTERVAL_S="0.5",
            CARECOORD_SIMULATED_PAYER_OUTCOMES=json.dumps({"MDENIED7": "denied"}),
        )
        try:
            billing.wait_ready()
            yield intake, folders
        finally:
            billing.stop()
            billing.start()
            billing.wait_ready()


async def get(stack: Stack, path: str) -> Any:
    async with api_client(timeout=10) as http:
        response = await http.get(journeys.url(stack, "billing", path))
        assert response.status_code == 200, response.text
        return response.json()


async def every(stack: Stack, path: str) -> list[dict[str, Any]]:
    """Every item of one of billing's paged lists, each next_cursor followed."""
    async with api_client(timeout=10) as http:
        return await journeys.every_item(http, stack, "billing", path)


async def planned(stack: Stack, patient: uuid.UUID, codes: list[str]) -> None:
    """The treatment plan as dosing announces it: billing takes the claims' diagnosis from it."""
    created = TreatmentPlanCreated(
        plan_id=uuid.uuid4(),
        starting_dose_mg=100,
        max_dose_mg=300,
        max_step_mg=50,
        planned_sessions=6,
        indication=Indication.ptsd,
        diagnosis_codes=codes,
    )
    await publish_event(stack.kafka.bootstrap, "dosing.plans", created, patient, "dosing")


async def insured(stack: Stack, intake: FakeIntake, member_id: str, *, plan: bool = True) -> uuid.UUID:
    patient = uuid.uuid4()
    if plan:
        await planned(stack, patient, ["F43.10"])
    intake.add(patient, member_id)
    bootstrap = stack.kafka.bootstrap
    await publish_event(
        bootstrap,
        "intake.patients",
        PatientRegistered(state_of_residence="TX", time_zone="America/Chicago"),
        patient,
        "intake",
    )
    declared = CoverageDeclared(
        coverage_id=uuid.uuid4(), kind=CoverageKind.insurance, payer_id="ACME1", state_of_residence="TX"
    )
    await publish_event(bootstrap, "intake.patients", declared, patient, "intake")
    # Coverage and appointments travel on different topics: wait until the payer has confirmed it.
    await eventually(
        lambda: _coverage_is(stack, patient, "active"), timeout=30, what="coverage verified by the payer's 271"
    )
    return patient


async def _coverage_is(stack: Stack, patient: uuid.UUID, status: str) -> bool:
    async with api_client(timeout=10) as http:
        response = await http.get(journeys.url(stack, "billing", f"/v1/patients/{patient}/coverage"))
    return response.status_code == 200 and response.json()["verification_status"] == status


async def complete(stack: Stack, patient: uuid.UUID, appointment: uuid.UUID, kind: AppointmentType, day: int) -> None:
    started = datetime.now(UTC) - timedelta(days=30 - day)
    event = AppointmentCompleted(
        appointment_id=appointment,
        appointment_type=kind,
        clinician_id="dr-lee",
        started_at=started,
        ended_at=started + timedelta(minutes=60),
    )
    await publish_event(stack.kafka.bootstrap, APPOINTMENTS, event, patient, "scheduling")


async def cancel_for_hold(stack: Stack, patient: uuid.UUID, appointment: uuid.UUID, day: int) -> None:
    event = AppointmentCancelled(
        appointment_id=appointment,
        appointment_type=AppointmentType.dosing_session,
        reason="treatment_hold",
        starts_at=datetime.now(UTC) + timedelta(days=day),
    )
    await publish_event(stack.kafka.bootstrap, APPOINTMENTS, event, patient, "scheduling")


async def test_a_course_with_a_hold_bills_the_completed_sessions_and_the_review_only(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    intake, folders = billing_exchange
    patient = await insured(services, intake, "MEMBER42", plan=False)
    evaluation, s1, s2, s3, s4, review, s3_rebooked = (uuid.uuid4() for _ in range(7))

    await complete(services, patient, evaluation, AppointmentType.initial_evaluation, 1)
    # The evaluation is billed before the plan exists: its claim waits for the plan's diagnosis.
    await planned(services, patient, ["F43.10", "F33.1"])
    await complete(services, patient, s1, AppointmentType.dosing_session, 3)
    await complete(services, patient, s2, AppointmentType.dosing_session, 6)
    await complete(services, patient, s1, AppointmentType.dosing_session, 3)  # scheduling redelivers, new event id
    # A severe report: the hold cancels the next two sessions and a review visit happens.
    await cancel_for_hold(services, patient, s3, 9)
    await cancel_for_hold(services, patient, s4, 12)
    await complete(services, patient, review, AppointmentType.urgent_review, 7)
    # The clinician resumes: the course goes on with a rebooked session.
    await complete(services, patient, s3_rebooked, AppointmentType.dosing_session, 10)

    billed = {evaluation, s1, s2, review, s3_rebooked}
    claims = await eventually(
        lambda: _all_paid(services, patient, len(billed)), timeout=60, what="every billable visit claimed and paid"
    )
    charges = await every(services, f"/v1/patients/{patient}/charges")
    assert {uuid.UUID(c["appointment_id"]) for c in charges} == billed
    assert not {s3, s4} & {uuid.UUID(c["appointment_id"]) for c in charges}, "cancelled by the hold: never charged"
    assert all(c["self_pay"] is False and c["payer_id"] == "ACME1" for c in charges)
    assert (
        sum(c["amount_cents"] for c in claims) == sum(c["amount_cents"] for c in charges) == 45000 + 3 * 25000 + 22000
    )

    created = await events_for(services.kafka.bootstrap, "billing.charges", patient, "ChargeCreated")
    assert sorted(e["payload"]["appointment_id"] for e in created) == sorted(map(str, billed))
    submitted = await events_for(services.kafka.bootstrap, "billing.claims", patient, "ClaimSubmitted")
    assert len(submitted) == len(billed)
    for claim_file in sorted((folders / "delivered").glob("837P-*")):
        assert pyx12_errors(claim_file) == [], claim_file.name
    mine = await every(services, f"/v1/patients/{patient}/claims")
    texts = "".join(p.read_text() for p in sorted((folders / "delivered").glob("837P-*")))
    for claim in mine:
        after = texts.split(f"CLM*{claim['claim_number']}*", 1)[1]
        assert after.split("~", 2)[1].strip() == "HI*ABK:F4310*ABF:F331", "the plan's diagnosis, principal first"


async def test_a_denied_claim_lands_in_the_denial_work_queue(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    intake, _folders = billing_exchange
    patient = await insured(services, intake, "MDENIED7")
    await complete(services, patient, uuid.uuid4(), AppointmentType.follow_up, 2)

    async def denied() -> list[dict[str, Any]]:
        return [d for d in await every(services, "/v1/denials") if d["patient_id"] == str(patient)]

    [denial] = await eventually(denied, timeout=60, what="the denial in the work queue")
    assert (denial["group_code"], denial["reason_code"], denial["amount_cents"]) == ("CO", "50", 32000)
    [claim] = await every(services, f"/v1/patients/{patient}/claims")
    assert claim["status"] == "denied" and claim["claim_id"] == denial["claim_id"]
    [event] = await eventually(
        lambda: events_for(services.kafka.bootstrap, "billing.claims", patient, "ClaimDenied"),
        what="ClaimDenied published",
    )
    assert event["payload"] == {"claim_id": claim["claim_id"], "reason_code": "50"}
    assert "MDENIED7" not in json.dumps(event), "no member id on Kafka"


async def _all_paid(stack: Stack, patient: uuid.UUID, expected: int) -> list[dict[str, Any]] | None:
    claims = await every(stack, f"/v1/patients/{patient}/claims")
    if len(claims) != expected or any(c["status"] != "paid" for c in claims):
        return None
    return [{**c, "amount_cents": c["total_cents"]} for c in claims]


async def test_a_self_pay_visit_is_invoiced_and_paid_over_http(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    patient = uuid.uuid4()
    await complete(services, patient, uuid.uuid4(), AppointmentType.follow_up, 4)
    # The declaration may well be read after the visit (another topic): the charge waits for it.
    declared = CoverageDeclared(coverage_id=uuid.uuid4(), kind=CoverageKind.self_pay, state_of_residence="FL")
    await publish_event(services.kafka.bootstrap, "intake.patients", declared, patient, "intake")
    [invoice] = await eventually(lambda: every(services, f"/v1/patients/{patient}/invoices"), what="the invoice issued")
    assert (invoice["kind"], invoice["amount_cents"], invoice["status"]) == ("visit", 32000, "open")
    [issued] = await eventually(
        lambda: events_for(services.kafka.bootstrap, "billing.charges", patient, "InvoiceIssued"),
        what="InvoiceIssued published",
    )
    assert issued["payload"]["invoice_id"] == invoice["invoice_id"]

    path = journeys.url(services, "billing", f"/v1/invoices/{invoice['invoice_id']}/payments")
    payment = {"payment_id": str(uuid.uuid4()), "amount_cents": 32000, "method": "card"}
    async with api_client(timeout=10) as http:
        assert (await http.post(path, json={**payment, "amount_cents": 320.0})).status_code == 422, (
            "money is integer cents"
        )
        first = await http.post(path, json=payment)
        again = await http.post(path, json=payment)
        more = await http.post(path, json={**payment, "payment_id": str(uuid.uuid4()), "amount_cents": 1})
    assert (first.status_code, first.json()["status"], first.json()["paid_cents"]) == (201, "paid", 32000)
    assert (again.status_code, again.json()["paid_cents"]) == (200, 32000)
    assert more.status_code == 409, more.text
