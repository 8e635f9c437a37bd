"""X12 835 (005010X221A1): what the payer paid, adjusted or denied, per claim.

``read`` turns an 835 into claim payments (amounts in integer cents, checked to
balance); ``build`` is the payer's side, used by the simulated payer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .parties import Payer, Subscriber, text
from .syntax import Party, Segment, X12Error, cents, interchange, loops, money, parse, segment

VERSION = "005010X221A1"
REVERSAL = "22"
DENIED = "4"
PROCESSED = frozenset({"1", "2", "3", "19", "20", "21"})
GROUPS = frozenset({"CO", "PR", "OA", "PI", "CR"})


@dataclass(frozen=True)
class Adjustment:
    group: str
    reason_code: str
    cents: int


@dataclass(frozen=True)
class ClaimPayment:
    """One CLP loop: CLP01 is our CLM01."""

    claim_number: str
    status_code: str
    charge_cents: int
    paid_cents: int
    patient_responsibility_cents: int
    payer_claim_number: str
    adjustments: tuple[Adjustment, ...]

    @property
    def reversal(self) -> bool:
        return self.status_code == REVERSAL

    @property
    def denied(self) -> bool:
        return self.status_code == DENIED


def read(document: str) -> list[ClaimPayment]:
    payments: list[ClaimPayment] = []
    for transaction in parse(document):
        if transaction.code != "835":
            raise X12Error(f"expected an 835, found a {transaction.code}")
        payments.extend(_claim_payment(loop) for loop in loops(transaction.segments, "CLP"))
    return payments


def _claim_payment(loop: list[Segment]) -> ClaimPayment:
    clp = loop[0]
    if not clp[1]:
        raise X12Error("a CLP segment has no claim number")
    if clp[2] not in PROCESSED | {REVERSAL, DENIED}:
        raise X12Error(f"claim status code {clp[2]!r} is not one we post")
    adjustments: list[Adjustment] = []
    for cas in (s for s in loop[1:] if s.id == "CAS"):
        if cas[1] not in GROUPS:
            raise X12Error(f"CAS group {cas[1]!r} is not CO, PR, OA, PI or CR")
        # Up to six reason/amount/quantity triplets follow the group code.
        for position in range(2, 20, 3):
            if cas[position]:
                adjustments.append(Adjustment(cas[1], cas[position], cents(cas[position + 1])))
    payment = ClaimPayment(
        claim_number=clp[1],
        status_code=clp[2],
        charge_cents=cents(clp[3]),
        paid_cents=cents(clp[4]),
        patient_responsibility_cents=cents(clp[5]) if clp[5] else 0,
        payer_claim_number=clp[7],
        adjustments=tuple(adjustments),
    )
    # The 835's own balancing rule: charge - paid = sum of the claim's adjustments.
    if payment.charge_cents - payment.paid_cents != sum(a.cents for a in adjustments):
        raise X12Error(f"claim {payment.claim_number}: charge minus payment does not equal its adjustments")
    return payment


@dataclass(frozen=True)
class PaidClaim:
    """What the payer writes for one claim (the simulated payer's side)."""

    payment: ClaimPayment
    patient: Subscriber
    place_of_service: str


def build(
    claims: Sequence[PaidClaim],
    *,
    payer: Payer,
    payee_name: str,
    payee_npi: str,
    sender: Party,
    receiver: str,
    control_number: int,
    at: datetime,
) -> str:
    total = sum(c.payment.paid_cents for c in claims)
    day = at.strftime("%Y%m%d")
    body = [
        "835",
        segment(
            "BPR", "I" if total > 0 else "H", money(max(total, 0)), "C", "CHK" if total > 0 else "NON", *[""] * 11, day
        ),
        segment("TRN", "1", f"{control_number:09d}", "1999999999"),
        segment("DTM", "405", day),
        segment("N1", "PR", payer.display_name),
        segment("N3", "1 PAYER WAY"),
        segment("N4", "HARTFORD", "CT", "061010001"),
        segment("PER", "BL", "PROVIDER SERVICES", "TE", "8005550100"),
        segment("N1", "PE", text(payee_name, 60), "XX", payee_npi),
        segment("LX", "1"),
    ]
    for paid in claims:
        p = paid.payment
        body.append(
            segment(
                "CLP",
                p.claim_number,
                p.status_code,
                money(p.charge_cents),
                money(p.paid_cents),
                money(p.patient_responsibility_cents) if p.patient_responsibility_cents else "",
                "12",
                p.payer_claim_number,
                paid.place_of_service,
                "1",
            )
        )
        by_group: dict[str, list[Adjustment]] = {}
        for adjustment in p.adjustments:
            by_group.setdefault(adjustment.group, []).append(adjustment)
        for group, adjustments in by_group.items():
            triplets = [v for a in adjustments for v in (a.reason_code, money(a.cents), "")]
            body.append(segment("CAS", group, *triplets))
        patient = paid.patient
        body.append(
            segment(
                "NM1",
                "QC",
                "1",
                text(patient.last_name, 60),
                text(patient.first_name, 35),
                "",
                "",
                "",
                "MI",
                text(patient.member_id, 80),
            )
        )
    return interchange(
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        functional_id="HP",
        version=VERSION,
        transactions=[body],
        at=at,
        implementation_reference=False,
    )
