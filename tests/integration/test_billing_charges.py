"""Charges from completed appointments: one per appointment whatever is redelivered,
never for a session a treatment hold cancelled."""

from __future__ import annotations

import asyncio
import uuid

from carecoord_contracts import Envelope
from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_contracts.intake import CoverageDeclared, PatientRegistered
from carecoord_shared.messaging.consumer import Outcome
from tests.integration.billing_harness import (
    Billing,
    charges_of,
    completed,
    declare,
    hold_cancelled,
    outbox_types,
)


async def test_a_completion_redelivered_any_number_of_times_is_one_charge(billing: Billing) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await declare(billing, patient)
    first = await billing.publish(completed(appointment), patient, "scheduling")
    assert await billing.deliver(first) == Outcome.duplicate  # same event id: the inbox
    for _ in range(3):  # new event ids for the same appointment: the unique constraint
        await billing.publish(completed(appointment), patient, "scheduling")

    [charge] = await charges_of(billing, patient)
    assert charge["appointment_id"] == appointment
    assert [(line["cpt"], line["cents"]) for line in charge["lines"]] == [("99214", 22000), ("90833", 10000)]
    assert charge["amount_cents"] == 32000 and isinstance(charge["amount_cents"], int)
    assert (charge["place_of_service"], charge["modifiers"]) == ("10", ["95"])
    assert charge["self_pay"] is True
    assert charge["status"] == "invoiced"
    assert await outbox_types(billing, patient) == ["ChargeCreated", "InvoiceIssued"]


async def test_concurrent_completions_of_one_appointment_are_one_charge(billing: Billing) -> None:
    patient, appointment = uuid.uuid4(), uuid.uuid4()
    await declare(billing, patient)
    envelopes = [Envelope.wrap(completed(appointment), patient_id=patient, producer="scheduling") for _ in range(5)]
    outcomes = await asyncio.gather(*(billing.deliver(e) for e in envelopes))
    assert set(outcomes) == {Outcome.processed}, billing.dead_letters
    assert len(await charges_of(billing, patient)) == 1
    assert (await outbox_types(billing, patient)).count("ChargeCreated") == 1


async def test_codes_per_appointment_type_and_no_video_modifier_in_person(billing: Billing) -> None:
    patient = uuid.uuid4()
    expected = {
        AppointmentType.initial_evaluation: ["90792"],
        AppointmentType.urgent_review: ["99214"],
        AppointmentType.dosing_session: ["99213", "90833"],
        AppointmentType.integration: ["90834"],
    }
    for kind in expected:
        await billing.publish(
            completed(uuid.uuid4(), kind, video=kind != AppointmentType.integration), patient, "scheduling"
        )
    rows = await charges_of(billing, patient)
    got = {row["appointment_type"]: ([line["cpt"] for line in row["lines"]], row["modifiers"]) for row in rows}
    assert got == {
        kind.value: (codes, [] if kind == AppointmentType.integration else ["95"]) for kind, codes in expected.items()
    }


async def test_a_review_visit_is_billed_as_a_new_patients_when_scheduling_says_so(billing: Billing) -> None:
    patient = uuid.uuid4()
    await declare(billing, patient)
    first, second = uuid.uuid4(), uuid.uuid4()
    await billing.publish(
        completed(first, AppointmentType.urgent_review).model_copy(update={"new_patient": True}), patient, "scheduling"
    )
    await billing.publish(
        completed(second, AppointmentType.urgent_review).model_copy(update={"new_patient": False}),
        patient,
        "scheduling",
    )
    codes = {
        row["appointment_id"]: [line["cpt"] for line in row["lines"]] for row in await charges_of(billing, patient)
    }
    assert codes == {first: ["99204"], second: ["99214"]}


async def test_service_date_is_the_patients_local_date(billing: Billing) -> None:
    patient = uuid.uuid4()
    await billing.publish(
        PatientRegistered(state_of_residence="CA", time_zone="America/Los_Angeles"), patient, "intake"
    )
    await billing.publish(completed(uuid.uuid4()), patient, "scheduling")
    [charge] = await charges_of(billing, patient)
    assert str(charge["service_date"]) == "2026-11-19", "03:30 UTC is the evening before in California"


async def test_insured_in_an_accepting_state_is_billed_to_the_payer_elsewhere_self_pay(billing: Billing) -> None:
    insured, out_of_network = uuid.uuid4(), uuid.uuid4()
    for patient, state in ((insured, "TX"), (out_of_network, "FL")):
        await billing.publish(
            CoverageDeclared(
                coverage_id=uuid.uuid4(), kind=CoverageKind.insurance, payer_id="ACME1", state_of_residence=state
            ),
            patient,
            "intake",
        )
        await billing.publish(completed(uuid.uuid4()), patient, "scheduling")
    [billed] = await charges_of(billing, insured)
    [self_pay] = await charges_of(billing, out_of_network)
    assert (billed["self_pay"], billed["payer_id"]) == (False, "ACME1")
    assert (self_pay["self_pay"], self_pay["payer_id"]) == (True, None)
    queued = await billing.fetch(
        "SELECT patient_id FROM eligibility_checks WHERE patient_id = ANY($1)", [insured, out_of_network]
    )
    assert [r["patient_id"] for r in queued] == [insured], "only coverage billed to a payer is verified"


async def test_a_hold_cancellation_voids_the_charge_once_and_blocks_a_late_completion(billing: Billing) -> None:
    patient, charged, never_held, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await declare(billing, patient)
    await billing.publish(completed(charged, AppointmentType.dosing_session), patient, "scheduling")
    for _ in range(2):
        await billing.publish(hold_cancelled(charged), patient, "scheduling")
    # Cancelled by the hold first; a completion arriving afterwards is never billed.
    await billing.publish(hold_cancelled(never_held), patient, "scheduling")
    await billing.publish(completed(never_held, AppointmentType.dosing_session), patient, "scheduling")
    # A patient's own cancellation is not a hold: the completed visit stays charged.
    await billing.publish(completed(other), patient, "scheduling")
    await billing.publish(hold_cancelled(other, reason="patient_request"), patient, "scheduling")

    rows = {r["appointment_id"]: r for r in await charges_of(billing, patient)}
    assert set(rows) == {charged, other}
    assert (rows[charged]["status"], rows[charged]["void_reason"]) == ("voided", "treatment_hold")
    assert rows[other]["status"] == "invoiced"
    assert await outbox_types(billing, patient) == [
        "ChargeCreated",
        "InvoiceIssued",
        "ChargeVoided",
        "ChargeCreated",
        "InvoiceIssued",
    ]
    # The voided session's place in the self-pay package is given back.
    [package] = await billing.fetch("SELECT * FROM invoices WHERE patient_id = $1 AND kind = 'package'", patient)
    assert (package["sessions_used"], package["invoice_id"]) == (0, rows[charged]["invoice_id"])


async def test_a_visit_completed_before_the_coverage_arrives_waits_for_it(billing: Billing) -> None:
    """Coverage (intake.patients) and visits (scheduling.appointments) are not ordered with each other."""
    patient, visit, held = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await billing.publish(completed(visit), patient, "scheduling")
    await billing.publish(completed(held, AppointmentType.dosing_session), patient, "scheduling")
    await billing.publish(hold_cancelled(held), patient, "scheduling")
    [waiting, voided] = await charges_of(billing, patient)
    assert (waiting["status"], waiting["self_pay"], voided["status"]) == ("awaiting_coverage", None, "voided")
    assert await outbox_types(billing, patient) == [], "nothing is announced before the payer is known"

    await declare(billing, patient, CoverageKind.insurance, "TX", "ACME1")

    [billed, voided] = await charges_of(billing, patient)
    assert (billed["status"], billed["self_pay"], billed["payer_id"]) == ("open", False, "ACME1")
    assert voided["status"] == "voided"
    assert await outbox_types(billing, patient) == ["ChargeCreated"]
