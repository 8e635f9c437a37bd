"""Billing's decisions, pure: who is billed, a visit's date of service, which invoice a self-pay
charge goes on, what a payment leaves due, and what a payer's answer does to a claim. No I/O.

The use cases (coverage.py, charges.py, invoicing.py, remittance.py) load the rows these look
at, call them, and write and announce what they return. Prices are the fee schedule's
(fees/), the X12 files the x12 package's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_shared.errors import RuleViolation

from .x12.remittance_835 import ClaimPayment

# -- coverage ---------------------------------------------------------------------------------


def billable_to_payer(
    kind: CoverageKind, payer_id: str | None, state_of_residence: str, insurance_states: frozenset[str]
) -> bool:
    """Insurance is billed to the payer only in the states configured as accepting it."""
    return kind == CoverageKind.insurance and payer_id is not None and state_of_residence in insurance_states


@dataclass(frozen=True)
class BilledParty:
    """Whether the patient's coverage is known, and the payer to bill (None: the patient pays)."""

    known: bool
    payer_id: str | None


def billed_party(payer_id: str | None, billable_to_payer: bool, verification_status: str) -> BilledParty:
    """A payer's 271 saying the coverage is inactive also turns the patient to self-pay."""
    if not billable_to_payer or verification_status == "inactive":
        return BilledParty(known=True, payer_id=None)
    return BilledParty(known=True, payer_id=payer_id)


UNKNOWN_PARTY = BilledParty(known=False, payer_id=None)


# -- charges ----------------------------------------------------------------------------------


def service_date(started_at: datetime, time_zone: str | None) -> date:
    """The date of service is the patient's local date (a late-evening visit is not tomorrow's)."""
    try:
        zone = ZoneInfo(time_zone) if time_zone else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    return started_at.astimezone(zone).date() if zone else started_at.date()


# -- self-pay invoices ------------------------------------------------------------------------


@dataclass(frozen=True)
class PackagePlacement:
    """Where a charge the course package covers goes: a new package or the current one, and whether
    it uses one of the package's sessions."""

    issue_new: bool
    uses_session: bool


def package_placement(current: Any | None, appointment_type: AppointmentType) -> PackagePlacement:
    """A dosing session uses one of the current package's sessions; a new package is issued when none is left."""
    uses_session = appointment_type == AppointmentType.dosing_session
    exhausted = current is not None and uses_session and current.sessions_used >= current.sessions_included
    return PackagePlacement(issue_new=current is None or exhausted, uses_session=uses_session)


@dataclass(frozen=True)
class InvoicePaid:
    paid_cents: int
    status: str


def pay(*, amount_cents: int, paid_cents: int, payment_cents: int) -> InvoicePaid:
    """What a payment leaves on an invoice; paying more than is still due is refused."""
    paid = paid_cents + payment_cents
    if paid > amount_cents:
        raise RuleViolation(
            f"a payment of {payment_cents} cents is more than the {amount_cents - paid_cents} cents still due"
        )
    return InvoicePaid(paid_cents=paid, status="paid" if paid == amount_cents else "open")


# -- remittance -------------------------------------------------------------------------------


def adjudicated_status(payment: ClaimPayment) -> str:
    """The claim's status after a payment that is not a denial."""
    if payment.reversal:
        return "reversed"
    return "paid" if payment.paid_cents >= payment.charge_cents else "partially_paid"


def denial_reason(payment: ClaimPayment) -> tuple[str, str]:
    """(group code, reason code) of a denial: the work queue is sorted by the reason that moved the most money."""
    main = max(payment.adjustments, key=lambda a: abs(a.cents), default=None)
    return (main.group, main.reason_code) if main else ("OA", "0")
