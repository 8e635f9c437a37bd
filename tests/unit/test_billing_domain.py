"""Billing's pure decisions (carecoord_billing.domain), without a database: each at and past its edge."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from carecoord_billing import domain
from carecoord_billing.x12.remittance_835 import Adjustment, ClaimPayment
from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_shared.errors import RuleViolation

ACCEPTING = frozenset({"TX", "NY"})


@pytest.mark.parametrize(
    ("kind", "payer_id", "state", "billable"),
    [
        pytest.param(CoverageKind.insurance, "ACME1", "TX", True, id="insured-in-an-accepting-state"),
        pytest.param(CoverageKind.insurance, "ACME1", "FL", False, id="insured-elsewhere"),
        pytest.param(CoverageKind.insurance, None, "TX", False, id="insured-without-a-payer"),
        pytest.param(CoverageKind.self_pay, None, "TX", False, id="self-pay"),
    ],
)
def test_only_insurance_in_an_accepting_state_is_billed_to_the_payer(
    kind: CoverageKind, payer_id: str | None, state: str, billable: bool
) -> None:
    assert domain.billable_to_payer(kind, payer_id, state, ACCEPTING) is billable


@pytest.mark.parametrize(
    ("billable", "status", "payer_id"),
    [(True, "unverified", "ACME1"), (True, "active", "ACME1"), (True, "inactive", None), (False, "unverified", None)],
)
def test_an_inactive_or_unbillable_coverage_makes_the_patient_pay(billable: bool, status: str, payer_id: str) -> None:
    assert domain.billed_party("ACME1", billable, status) == domain.BilledParty(known=True, payer_id=payer_id)


def test_the_date_of_service_is_the_patients_local_date() -> None:
    late_evening_in_chicago = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)
    assert domain.service_date(late_evening_in_chicago, "America/Chicago") == date(2026, 11, 19)
    assert domain.service_date(late_evening_in_chicago, None) == date(2026, 11, 20)
    assert domain.service_date(late_evening_in_chicago, "Not/AZone") == date(2026, 11, 20)


def package(used: int, included: int = 6) -> SimpleNamespace:
    return SimpleNamespace(sessions_used=used, sessions_included=included)


@pytest.mark.parametrize(
    ("current", "kind", "issue_new", "uses_session"),
    [
        pytest.param(None, AppointmentType.dosing_session, True, True, id="first-package"),
        pytest.param(package(5), AppointmentType.dosing_session, False, True, id="last-session-left"),
        pytest.param(package(6), AppointmentType.dosing_session, True, True, id="none-left"),
        pytest.param(package(6), AppointmentType.integration, False, False, id="therapy-on-a-used-package"),
    ],
)
def test_a_dosing_session_uses_the_current_package_until_none_is_left(
    current: SimpleNamespace | None, kind: AppointmentType, issue_new: bool, uses_session: bool
) -> None:
    assert domain.package_placement(current, kind) == domain.PackagePlacement(issue_new, uses_session)


def test_a_payment_pays_an_invoice_up_to_what_is_due_and_never_past_it() -> None:
    assert domain.pay(amount_cents=1000, paid_cents=400, payment_cents=599) == domain.InvoicePaid(999, "open")
    assert domain.pay(amount_cents=1000, paid_cents=400, payment_cents=600) == domain.InvoicePaid(1000, "paid")
    with pytest.raises(RuleViolation, match="601 cents is more than the 600 cents still due"):
        domain.pay(amount_cents=1000, paid_cents=400, payment_cents=601)


def payment(status: str = "1", charge: int = 1000, paid: int = 1000, *adjustments: Adjustment) -> ClaimPayment:
    return ClaimPayment("C1", status, charge, paid, 0, "P1", adjustments)


def test_a_claim_is_paid_in_full_at_its_charge_and_partially_below_it() -> None:
    assert domain.adjudicated_status(payment(paid=1000)) == "paid"
    assert domain.adjudicated_status(payment(paid=999)) == "partially_paid"
    assert domain.adjudicated_status(payment("22", paid=-1000)) == "reversed"


def test_a_denial_is_queued_under_the_adjustment_that_moved_the_most_money() -> None:
    small, large_reversal = Adjustment("CO", "45", 100), Adjustment("PR", "96", -900)
    assert domain.denial_reason(payment("4", 1000, 0, small, large_reversal)) == ("PR", "96")
    assert domain.denial_reason(payment("4", 1000, 0)) == ("OA", "0")
