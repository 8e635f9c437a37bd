"""X12 270/271 (005010X279A1): eligibility inquiry and the payer's answer.

Each inquiry carries our trace number in TRN (TRN01 = 1, current); the 271
echoes it as TRN01 = 2 (referenced), which is how an answer finds its inquiry.
EB01 = 1 is active coverage, 6 inactive; an AAA segment is a rejected inquiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from .parties import Payer, Provider, Subscriber, text
from .syntax import Party, Segment, X12Error, interchange, loops, parse, segment

VERSION = "005010X279A1"
# Health benefit plan coverage: the general "is this member covered" question.
SERVICE_TYPE = "30"


@dataclass(frozen=True)
class Inquiry:
    trace_number: str
    payer: Payer
    subscriber: Subscriber
    on: date


@dataclass(frozen=True)
class Answer:
    trace_number: str
    status: str  # active | inactive | unknown


def _header(
    purpose: str, reference: str, payer: Payer, provider_name: str, provider_npi: str, at: datetime
) -> list[str]:
    return [
        segment("BHT", "0022", purpose, reference, at.strftime("%Y%m%d"), at.strftime("%H%M")),
        segment("HL", "1", "", "20", "1"),
        segment("NM1", "PR", "2", payer.display_name, "", "", "", "", "PI", payer.id),
        segment("HL", "2", "1", "21", "1"),
        segment("NM1", "1P", "2", text(provider_name, 60), "", "", "", "", "XX", provider_npi),
    ]


def _subscriber(sub: Subscriber) -> list[str]:
    return [
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
        segment("DMG", "D8", sub.date_of_birth.strftime("%Y%m%d"), sub.sex),
    ]


def build_270(inquiries: Sequence[Inquiry], *, provider: Provider, control_number: int, at: datetime) -> str:
    """One transaction set per inquiry (each has its own payer)."""
    transactions = []
    for inquiry in inquiries:
        transactions.append(
            [
                "270",
                *_header("13", inquiry.trace_number[:50], inquiry.payer, provider.name, provider.npi, at),
                segment("HL", "3", "2", "22", "0"),
                segment("TRN", "1", inquiry.trace_number, f"9{provider.tax_id}"),
                *_subscriber(inquiry.subscriber),
                segment("DTP", "291", "D8", inquiry.on.strftime("%Y%m%d")),
                segment("EQ", SERVICE_TYPE),
            ]
        )
    return interchange(
        sender=Party(provider.submitter_id, provider.usage),
        receiver=provider.receiver_id,
        control_number=control_number,
        functional_id="HS",
        version=VERSION,
        transactions=transactions,
        at=at,
    )


@dataclass(frozen=True)
class ReadInquiry:
    """A 270 as the (simulated) payer reads it: no PHI beyond what it needs to answer."""

    trace_number: str
    originator: str
    payer_id: str
    member_id: str = field(repr=False)
    last_name: str = field(repr=False)
    first_name: str = field(repr=False)
    provider_name: str = ""
    provider_npi: str = ""


def read_270(document: str) -> list[ReadInquiry]:
    out = []
    for transaction in parse(document):
        if transaction.code != "270":
            raise X12Error(f"expected a 270, found a {transaction.code}")
        names = {s[1]: s for s in transaction.segments if s.id == "NM1"}
        trn = _one(transaction.segments, "TRN")
        subscriber, provider = names["IL"], names["1P"]
        out.append(
            ReadInquiry(
                trn[2], trn[3], names["PR"][9], subscriber[9], subscriber[3], subscriber[4], provider[3], provider[9]
            )
        )
    return out


def build_271(
    answers: Sequence[tuple[ReadInquiry, bool]], *, sender: Party, receiver: str, control_number: int, at: datetime
) -> str:
    transactions = []
    for inquiry, active in answers:
        transactions.append(
            [
                "271",
                *_header(
                    "11",
                    inquiry.trace_number[:50],
                    Payer(inquiry.payer_id),
                    inquiry.provider_name,
                    inquiry.provider_npi,
                    at,
                ),
                segment("HL", "3", "2", "22", "0"),
                segment("TRN", "2", inquiry.trace_number, inquiry.originator),
                segment("NM1", "IL", "1", inquiry.last_name, inquiry.first_name, "", "", "", "MI", inquiry.member_id),
                segment("EB", "1" if active else "6", "IND", SERVICE_TYPE),
            ]
        )
    return interchange(
        sender=sender,
        receiver=receiver,
        control_number=control_number,
        functional_id="HB",
        version=VERSION,
        transactions=transactions,
        at=at,
    )


def read_271(document: str) -> list[Answer]:
    answers = []
    for transaction in parse(document):
        if transaction.code != "271":
            raise X12Error(f"expected a 271, found a {transaction.code}")
        for subscriber in loops(transaction.segments, "HL"):
            if subscriber[0][3] != "22":
                continue
            trn = next((s for s in subscriber if s.id == "TRN" and s[1] == "2"), None)
            if trn is None or not trn[2]:
                raise X12Error("a 271 subscriber has no referenced trace number (TRN*2)")
            answers.append(Answer(trn[2], _status(subscriber)))
    if not answers:
        raise X12Error("the 271 answers no inquiry")
    return answers


def _status(segments: list[Segment]) -> str:
    if any(s.id == "AAA" for s in segments):
        return "unknown"
    codes = {s[1] for s in segments if s.id == "EB"}
    if "1" in codes:
        return "active"
    if "6" in codes:
        return "inactive"
    return "unknown"


def _one(segments: Sequence[Segment], segment_id: str) -> Segment:
    found = [s for s in segments if s.id == segment_id]
    if len(found) != 1:
        raise X12Error(f"expected one {segment_id} segment, found {len(found)}")
    return found[0]
