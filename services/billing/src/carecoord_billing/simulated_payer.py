"""A local stand-in for the payers behind the clearinghouse, so the whole exchange runs here.

It takes what we drop in outbound/ (as the clearinghouse would), answers
270s with 271s and claims with 835s in inbound/, and keeps what it took in
delivered/. How it adjudicates is configuration: a default outcome, and an
outcome per member id, so tests and demos can ask for each case.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import structlog

from .clearinghouse import move_to, ready_files, write_atomically
from .settings import PayerOutcome
from .x12 import claim_837p, eligibility, remittance_835
from .x12.parties import Payer
from .x12.remittance_835 import Adjustment, ClaimPayment, PaidClaim
from .x12.syntax import Party, X12Error, interchange_sender, parse

log = structlog.get_logger("carecoord.billing.simulated_payer")


# CARC 45: charge exceeds the fee schedule; 2: coinsurance; 50: not medically necessary.
CONTRACTUAL, COINSURANCE, NOT_NECESSARY = "45", "2", "50"


def adjudicate(claim: claim_837p.ReceivedClaim, outcome: PayerOutcome, payer_claim_number: str) -> list[ClaimPayment]:
    """The CLP loops a payer sends for one claim; every one balances (charge - paid = adjustments)."""
    total = claim.total_cents

    def payment(status: str, charge: int, paid: int, patient: int = 0, *adjustments: Adjustment) -> ClaimPayment:
        return ClaimPayment(claim.claim_number, status, charge, paid, patient, payer_claim_number, tuple(adjustments))

    if outcome == PayerOutcome.paid:
        return [payment("1", total, total)]
    if outcome == PayerOutcome.partially_paid:
        allowed = total * 80 // 100
        paid = allowed * 80 // 100
        coinsurance = allowed - paid
        return [
            payment(
                "1",
                total,
                paid,
                coinsurance,
                Adjustment("CO", CONTRACTUAL, total - allowed),
                Adjustment("PR", COINSURANCE, coinsurance),
            )
        ]
    if outcome == PayerOutcome.denied:
        return [payment("4", total, 0, 0, Adjustment("CO", NOT_NECESSARY, total))]
    # A payment taken back: the original, then its reversal (CLP02 = 22) with negated amounts.
    return [payment("1", total, total), payment("22", -total, -total)]


class SimulatedPayer:
    def __init__(
        self,
        root: Path,
        *,
        default_outcome: PayerOutcome = PayerOutcome.paid,
        outcomes: Mapping[str, PayerOutcome] | None = None,
        inactive_members: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbound = root / "outbound"
        self.inbound = root / "inbound"
        self.delivered = root / "delivered"
        for folder in (self.outbound, self.inbound, self.delivered):
            folder.mkdir(parents=True, exist_ok=True)
        self._default = default_outcome
        self._outcomes = dict(outcomes or {})
        self._inactive = inactive_members
        self._clock = clock
        self._numbers = itertools.count(int(clock().timestamp()) % 900_000_000 + 1)
        self._sender = Party("SIMPAYER")

    def run_once(self) -> int:
        """Answer every file waiting in outbound/; returns how many answers were written."""
        answered = 0
        for path in ready_files(self.outbound):
            try:
                answer = self._answer(path.read_text(encoding="ascii"))
            except (X12Error, UnicodeDecodeError, KeyError, IndexError, StopIteration) as exc:
                log.warning("simulated_payer.unreadable", file=path.name, problem=type(exc).__name__)
                answer = None
            move_to(self.delivered, path)
            if answer is not None:
                name, content = answer
                write_atomically(self.inbound, name, content)
                answered += 1
        return answered

    def _answer(self, document: str) -> tuple[str, str] | None:
        transactions = parse(document)
        code = transactions[0].code
        receiver = interchange_sender(document)
        number = next(self._numbers)
        at = self._clock()
        if code == "270":
            inquiries = eligibility.read_270(document)
            answers = [(i, i.member_id not in self._inactive) for i in inquiries]
            return f"271-{number:09d}.x12", eligibility.build_271(
                answers, sender=self._sender, receiver=receiver, control_number=number, at=at
            )
        if code == "837":
            received = claim_837p.read(document)
            paid = [
                PaidClaim(payment, claim.patient, claim.place_of_service)
                for n, claim in enumerate(received, start=1)
                for payment in adjudicate(
                    claim, self._outcomes.get(claim.patient.member_id, self._default), f"SIM{number}{n:04d}"
                )
            ]
            payer = Payer(received[0].payer_id) if received else Payer("SIMPAYER")
            billing_provider = next(s for s in transactions[0].segments if s.id == "NM1" and s[1] == "85")
            return f"835-{number:09d}.x12", remittance_835.build(
                paid,
                payer=payer,
                payee_name=billing_provider[3],
                payee_npi=billing_provider[9],
                sender=self._sender,
                receiver=receiver,
                control_number=number,
                at=at,
            )
        return None
