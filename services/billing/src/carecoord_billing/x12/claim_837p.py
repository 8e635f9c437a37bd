"""X12 837P (005010X222A1): professional claims, one CLM per charge.

The patient is their own subscriber; the practice is the billing provider and
renders the service (clinician NPIs are not known to billing). CLM01 is our
claim number, which the payer echoes in the 835's CLP01.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from .parties import Payer, Provider, Subscriber, text
from .syntax import Party, Segment, X12Error, cents, interchange, money, parse, segment

VERSION = "005010X222A1"


@dataclass(frozen=True)
class ServiceLine:
    cpt: str
    modifiers: tuple[str, ...]
    cents: int
    service_date: date


@dataclass(frozen=True)
class Claim:
    claim_number: str
    payer: Payer
    subscriber: Subscriber
    place_of_service: str
    # ICD-10-CM codes without the dot, principal first (HI: ABK, then ABF for the others).
    diagnoses: tuple[str, ...]
    lines: tuple[ServiceLine, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.diagnoses) <= 12:
            raise ValueError("an 837P claim carries 1 to 12 diagnosis codes")
        if any("." in code for code in self.diagnoses):
            raise ValueError("837P diagnosis codes go without the dot")

    @property
    def total_cents(self) -> int:
        return sum(line.cents for line in self.lines)

    def __repr__(self) -> str:
        return f"Claim({self.claim_number})"


def build(claims: Sequence[Claim], *, provider: Provider, control_number: int, at: datetime) -> str:
    """One interchange with one 837P transaction set holding every claim."""
    if not claims:
        raise ValueError("an 837P needs at least one claim")
    body = [
        "837",
        segment("BHT", "0019", "00", f"B{control_number:09d}", at.strftime("%Y%m%d"), at.strftime("%H%M"), "CH"),
        # 1000A submitter, 1000B receiver
        segment("NM1", "41", "2", text(provider.name, 60), "", "", "", "", "46", provider.submitter_id),
        segment("PER", "IC", text(provider.contact_name, 60), "TE", provider.contact_phone),
        segment("NM1", "40", "2", text(provider.receiver_id, 60), "", "", "", "", "46", provider.receiver_id),
        # 2000A / 2010AA billing provider
        segment("HL", "1", "", "20", "1"),
        segment("NM1", "85", "2", text(provider.name, 60), "", "", "", "", "XX", provider.npi),
        segment("N3", text(provider.address_line1, 55)),
        segment("N4", text(provider.city, 30), provider.state, provider.postal_code),
        segment("REF", "EI", provider.tax_id),
    ]
    for hl, claim in enumerate(claims, start=2):
        body.extend(_subscriber_and_claim(hl, claim))
    sender = Party(provider.submitter_id, provider.usage)
    return interchange(
        sender=sender,
        receiver=provider.receiver_id,
        control_number=control_number,
        functional_id="HC",
        version=VERSION,
        transactions=[body],
        at=at,
    )


def _subscriber_and_claim(hl: int, claim: Claim) -> list[str]:
    sub = claim.subscriber
    out = [
        # 2000B: the patient is the subscriber, so no 2000C patient loop below it.
        segment("HL", str(hl), "1", "22", "0"),
        segment("SBR", "P", "18", "", "", "", "", "", "", "CI"),
        segment(
            "NM1",
            "IL",
            "1",
            text(sub.last_name, 60),
            text(sub.first_name, 35),
            "",
            "",
            "",
            "MI",
            text(sub.member_id, 80),
        ),
        segment("N3", text(sub.line1, 55)),
        segment("N4", text(sub.city, 30), sub.state, sub.postal_code),
        segment("DMG", "D8", sub.date_of_birth.strftime("%Y%m%d"), sub.sex),
        segment("NM1", "PR", "2", claim.payer.display_name, "", "", "", "", "PI", claim.payer.id),
        # 2300: CLM05 = place of service : B (professional) : 1 (original claim)
        segment(
            "CLM",
            claim.claim_number,
            money(claim.total_cents),
            "",
            "",
            (claim.place_of_service, "B", "1"),
            "Y",
            "A",
            "Y",
            "Y",
        ),
        segment("HI", ("ABK", claim.diagnoses[0]), *(("ABF", code) for code in claim.diagnoses[1:])),
    ]
    for number, line in enumerate(claim.lines, start=1):
        out.extend(
            [
                segment("LX", str(number)),
                segment("SV1", ("HC", line.cpt, *line.modifiers), money(line.cents), "UN", "1", "", "", "1"),
                segment("DTP", "472", "D8", line.service_date.strftime("%Y%m%d")),
            ]
        )
    return out


@dataclass(frozen=True)
class ReceivedClaim:
    """A claim as the payer reads it from an 837P."""

    claim_number: str
    total_cents: int
    place_of_service: str
    payer_id: str
    patient: Subscriber
    diagnoses: tuple[str, ...] = ()


def read(document: str) -> list[ReceivedClaim]:
    out: list[ReceivedClaim] = []
    for transaction in parse(document):
        if transaction.code != "837":
            raise X12Error(f"expected an 837, found a {transaction.code}")
        subscriber: Segment | None = None
        payer: Segment | None = None
        for seg in transaction.segments:
            if seg.id == "NM1" and seg[1] == "IL":
                subscriber = seg
            elif seg.id == "NM1" and seg[1] == "PR":
                payer = seg
            elif seg.id == "CLM":
                if subscriber is None or payer is None:
                    raise X12Error("a CLM before its subscriber and payer")
                patient = Subscriber(subscriber[4], subscriber[3], date.min, "U", "", "", "", "", subscriber[9])
                out.append(ReceivedClaim(seg[1], cents(seg[2]), seg.components(5)[0], payer[9], patient))
            elif seg.id == "HI" and out:
                codes = tuple(seg.components(i)[1] for i in range(1, len(seg.elements)) if seg[i])
                out[-1] = replace(out[-1], diagnoses=codes)
    return out
