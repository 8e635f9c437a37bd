"""Billing's pure parts: money in X12, the fee schedule, and X12 written then read back."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from carecoord_billing import fees
from carecoord_billing.app import _intake_token
from carecoord_billing.demographics import (
    DemographicsUnavailable,
    IntakeDemographics,
    PatientUnknown,
    development_token,
)
from carecoord_billing.settings import BillingSettings, PayerOutcome, ProviderIdentity
from carecoord_billing.simulated_payer import adjudicate
from carecoord_billing.x12 import claim_837p, eligibility, remittance_835
from carecoord_billing.x12.parties import Payer, Subscriber
from carecoord_billing.x12.remittance_835 import PaidClaim
from carecoord_billing.x12.syntax import Party, X12Error, cents, money, parse
from carecoord_contracts.common import AppointmentType
from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, Role, mint_token
from tests.fake_intake import running_fake_intake

AT = datetime(2026, 11, 27, 9, 15, tzinfo=UTC)
JANE = Subscriber("Jane", "Doe", date(1980, 1, 2), "F", "1 Elm St", "Austin", "TX", "78701", "MEM1")


@given(st.integers(min_value=-(10**10), max_value=10**10))
def test_money_round_trips_exactly_through_x12(amount: int) -> None:
    assert cents(money(amount)) == amount


def test_money_is_integer_cents_never_float() -> None:
    assert (money(32000), money(32050), money(-1999), money(5)) == ("320", "320.5", "-19.99", "0.05")
    with pytest.raises(TypeError):
        money(320.5)  # type: ignore[arg-type]
    with pytest.raises(X12Error):
        cents("1.234")
    with pytest.raises(X12Error):
        cents("12,00")


def test_the_fee_schedule_prices_each_type_with_pos_10_and_modifier_95_on_video() -> None:
    schedule = fees.load()
    visit = schedule.price(AppointmentType.follow_up, video=True)
    assert visit is not None
    assert (visit.cpt_codes, visit.amount_cents, visit.modifiers, visit.place_of_service) == (
        ["99214", "90833"],
        32000,
        ("95",),
        "10",
    )
    assert schedule.price(AppointmentType.initial_evaluation, video=False).modifiers == ()  # type: ignore[union-attr]
    assert schedule.price(AppointmentType.urgent_review, video=True).cpt_codes == ["99214"]  # type: ignore[union-attr]
    assert set(schedule.by_type) == set(AppointmentType), "every appointment type has a product decision"


def test_a_review_visit_of_a_new_patient_bills_the_new_patient_e_m_and_an_established_one_99214() -> None:
    schedule = fees.load()
    established = schedule.price(AppointmentType.urgent_review, video=True, new_patient=False)
    unsaid = schedule.price(AppointmentType.urgent_review, video=True)
    new = schedule.price(AppointmentType.urgent_review, video=True, new_patient=True)
    assert established is not None and unsaid is not None and new is not None
    assert established.cpt_codes == unsaid.cpt_codes == ["99214"]
    assert new.cpt_codes == ["99204"] and new.modifiers == ("95",)
    assert schedule.price(AppointmentType.follow_up, video=True, new_patient=True).cpt_codes == ["99204", "90833"]  # type: ignore[union-attr]
    # A type without new-patient codes bills the same either way (the evaluation is 90792 for everyone).
    assert schedule.price(AppointmentType.initial_evaluation, video=True, new_patient=True).cpt_codes == ["90792"]  # type: ignore[union-attr]


def test_a_fee_schedule_with_a_float_price_is_refused() -> None:
    raw = {
        "version": "x",
        "place_of_service": "10",
        "video_modifier": "95",
        "self_pay": {"package": {"cents": 1, "sessions": 1, "covers": []}},
    }
    with pytest.raises(ValueError, match="integer of cents"):
        fees.parse({**raw, "appointment_types": {"follow_up": {"lines": [{"cpt": "99214", "cents": 220.0}]}}})


def test_an_837p_reads_back_as_the_payer_sees_it() -> None:
    claim = claim_837p.Claim(
        "CLAIM0001",
        Payer("ACME1"),
        JANE,
        "10",
        ("F331",),
        (
            claim_837p.ServiceLine("99214", ("95",), 22000, date(2026, 11, 20)),
            claim_837p.ServiceLine("90833", ("95",), 10000, date(2026, 11, 20)),
        ),
    )
    document = claim_837p.build([claim], provider=ProviderIdentity(), control_number=7, at=AT)
    [read] = claim_837p.read(document)
    assert (read.claim_number, read.total_cents, read.place_of_service, read.payer_id, read.patient.member_id) == (
        "CLAIM0001",
        32000,
        "10",
        "ACME1",
        "MEM1",
    )
    assert "Jane" not in repr(claim) and "Doe" not in repr(JANE), "PHI stays out of reprs (and so of tracebacks)"


@given(st.integers(min_value=1, max_value=10**8), st.sampled_from(list(PayerOutcome)))
def test_every_simulated_adjudication_balances_and_reads_back(total: int, outcome: PayerOutcome) -> None:
    received = claim_837p.ReceivedClaim("C1", total, "10", "ACME1", JANE)
    payments = adjudicate(received, outcome, "P1")
    document = remittance_835.build(
        [PaidClaim(p, JANE, "10") for p in payments],
        payer=Payer("ACME1"),
        payee_name="X",
        payee_npi="1234567893",
        sender=Party("SIMPAYER"),
        receiver="CARECOORD",
        control_number=3,
        at=AT,
    )
    assert remittance_835.read(document) == payments  # read() also checks each claim balances
    assert payments[-1].reversal == (outcome == PayerOutcome.reversed)
    assert payments[0].denied == (outcome == PayerOutcome.denied)


def test_a_271_answers_by_trace_number() -> None:
    inquiries = [eligibility.Inquiry(trace, Payer("ACME1"), JANE, date(2026, 11, 27)) for trace in ("T1", "T2")]
    request = eligibility.build_270(inquiries, provider=ProviderIdentity(), control_number=9, at=AT)
    read = eligibility.read_270(request)
    assert [(r.trace_number, r.member_id, r.originator) for r in read] == [
        ("T1", "MEM1", "9123456789"),
        ("T2", "MEM1", "9123456789"),
    ]
    answer = eligibility.build_271(
        [(read[0], True), (read[1], False)], sender=Party("SIMPAYER"), receiver="CARECOORD", control_number=4, at=AT
    )
    assert eligibility.read_271(answer) == [eligibility.Answer("T1", "active"), eligibility.Answer("T2", "inactive")]


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda doc: doc.replace("\nSE*", "\nSE*9", 1), "SE01 says"),
        (lambda doc: doc.rsplit("IEA", 1)[0], "truncated"),
        (lambda doc: "hello" + doc, "no ISA segment"),
        (lambda doc: doc.replace("IEA*1*000000009", "IEA*1*000000010"), "control numbers differ"),
    ],
)
def test_broken_envelopes_are_named(mangle, problem: str) -> None:  # type: ignore[no-untyped-def]
    document = eligibility.build_270(
        [eligibility.Inquiry("T1", Payer("ACME1"), JANE, date(2026, 11, 27))],
        provider=ProviderIdentity(),
        control_number=9,
        at=AT,
    )
    assert parse(document)
    with pytest.raises(X12Error, match=problem):
        parse(mangle(document))


async def test_the_intake_client_keeps_to_the_contract() -> None:
    known, unknown = uuid.uuid4(), uuid.uuid4()
    with running_fake_intake(token="s3cret") as intake:
        intake.add(known, "MEM77")
        client = IntakeDemographics(intake.url, SecretStr("s3cret"))
        demographics = await client.claim_demographics(known)
        subscriber = demographics.subscriber()
        assert subscriber is not None and (subscriber.member_id, subscriber.date_of_birth) == (
            "MEM77",
            date(1980, 1, 2),
        )
        assert "Jane" not in repr(demographics) and "1980" not in repr(demographics)
        with pytest.raises(PatientUnknown):
            await client.claim_demographics(unknown)
        with pytest.raises(DemographicsUnavailable, match="401"):
            await IntakeDemographics(intake.url, SecretStr("wrong")).claim_demographics(known)
        intake.add(known, "MEM77", date_of_birth="not a date")
        with pytest.raises(DemographicsUnavailable) as broken:
            await client.claim_demographics(known)
        assert "not a date" not in str(broken.value)
    assert intake.requests == [f"/v1/internal/patients/{p}/claim-demographics" for p in (known, unknown, known, known)]


async def test_billing_calls_intake_as_a_service_with_a_token_it_mints_per_request() -> None:
    patient = uuid.uuid4()
    with running_fake_intake() as intake:  # verifies a service JWT signed with the development secret, as intake does
        intake.add(patient, "MEM78")
        minted = development_token(DEVELOPMENT_JWT_SECRET, issuer="carecoord", audience="carecoord")
        assert (await IntakeDemographics(intake.url, minted).claim_demographics(patient)).patient_id == patient
        other_secret = development_token(
            "another-secret-intake-does-not-trust", issuer="carecoord", audience="carecoord"
        )
        with pytest.raises(DemographicsUnavailable, match="401"):
            await IntakeDemographics(intake.url, other_secret).claim_demographics(patient)
        as_patient = SecretStr(mint_token(Role.PATIENT, "someone", patient_id=patient))
        with pytest.raises(DemographicsUnavailable, match="403"):
            await IntakeDemographics(intake.url, as_patient).claim_demographics(patient)


def test_billing_needs_a_configured_intake_token_once_tokens_come_from_an_identity_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert callable(_intake_token(BillingSettings())), "development: minted per request"
    monkeypatch.setenv("CARECOORD_AUTH_JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----...")
    with pytest.raises(RuntimeError, match="CARECOORD_INTAKE_API_TOKEN"):
        _intake_token(BillingSettings())
    monkeypatch.setenv("CARECOORD_INTAKE_API_TOKEN", "eyJ.issued.by-the-identity-provider")
    configured = _intake_token(BillingSettings())
    assert isinstance(configured, SecretStr) and configured.get_secret_value() == "eyJ.issued.by-the-identity-provider"
