"""The X12 envelope and syntax: writing segments, reading them back, money and dates.

Written files use ``*`` between elements, ``:`` between components, ``^`` for
repetitions and ``~`` (plus a newline for people reading them) after each
segment. Reading takes the separators from the ISA segment, as X12 says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

ELEMENT = "*"
COMPONENT = ":"
REPETITION = "^"
TERMINATOR = "~"
ISA_LENGTH = 106


class X12Error(ValueError):
    """A file that is not the X12 we expect; the message says where and why (never its content)."""


def money(cents: int) -> str:
    """Integer cents as an X12 decimal amount: 32000 -> '320', 32050 -> '320.5', -1999 -> '-19.99'."""
    if type(cents) is not int:
        raise TypeError("money is integer cents")
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}" if part == 0 else f"{sign}{whole}.{part:02d}".rstrip("0")


def cents(amount: str) -> int:
    """An X12 decimal amount as integer cents, exactly (never through float)."""
    try:
        value = Decimal(amount) * 100
    except InvalidOperation as exc:
        raise X12Error(f"{amount!r} is not an amount") from exc
    if value != value.to_integral_value():
        raise X12Error("an amount has more than two decimals")
    return int(value)


@dataclass(frozen=True)
class Segment:
    elements: tuple[str, ...]
    component: str = COMPONENT

    @property
    def id(self) -> str:
        return self.elements[0]

    def __getitem__(self, position: int) -> str:
        """Element by its X12 position (CLP01 is ``seg[1]``); missing trailing elements are ''."""
        return self.elements[position] if position < len(self.elements) else ""

    def components(self, position: int) -> list[str]:
        return self[position].split(self.component)


def _element(value: str | Sequence[str] | None) -> str:
    """A simple element as it is (None: empty), a composite's components joined."""
    if value is None or isinstance(value, str):
        return value or ""
    return COMPONENT.join(value)


def segment(*elements: str | Sequence[str] | None) -> str:
    """One segment; a sequence element is a composite; trailing empty elements are dropped."""
    values = [_element(e) for e in elements]
    while values and values[-1] == "":
        values.pop()
    for value in values:
        if any(sep in value for sep in (ELEMENT, TERMINATOR, REPETITION)) or "\n" in value:
            raise X12Error(f"segment {values[0]}: a value contains a delimiter")
    return ELEMENT.join(values) + TERMINATOR + "\n"


@dataclass(frozen=True)
class Party:
    """Interchange sender or receiver (ISA06/ISA08, qualifier ZZ: mutually defined)."""

    id: str
    usage: str = "T"


def interchange(
    *,
    sender: Party,
    receiver: str,
    control_number: int,
    functional_id: str,
    version: str,
    transactions: Sequence[Sequence[str]],
    at: datetime,
    implementation_reference: bool = True,
) -> str:
    """ISA/GS/…/GE/IEA around transaction sets given as their body segments (ST and SE are added here).

    ``implementation_reference``: ST03 repeats the guide's version (837, 270/271); the 835 does not use it.
    """
    if not 0 < control_number < 1_000_000_000:
        raise X12Error("interchange control numbers are 1..999999999")
    isa = (
        ELEMENT.join(
            [
                "ISA",
                "00",
                " " * 10,
                "00",
                " " * 10,
                "ZZ",
                sender.id.ljust(15),
                "ZZ",
                receiver.ljust(15),
                at.strftime("%y%m%d"),
                at.strftime("%H%M"),
                REPETITION,
                "00501",
                f"{control_number:09d}",
                "0",
                sender.usage,
                COMPONENT,
            ]
        )
        + TERMINATOR
        + "\n"
    )
    out = [
        isa,
        segment(
            "GS",
            functional_id,
            sender.id,
            receiver,
            at.strftime("%Y%m%d"),
            at.strftime("%H%M"),
            str(control_number),
            "X",
            version,
        ),
    ]
    for number, body in enumerate(transactions, start=1):
        st_control = f"{number:04d}"
        st = segment("ST", body[0], st_control, version if implementation_reference else None)
        segments = [st, *body[1:]]
        out.extend(segments)
        out.append(segment("SE", str(len(segments) + 1), st_control))
    out.append(segment("GE", str(len(transactions)), str(control_number)))
    out.append(segment("IEA", "1", f"{control_number:09d}"))
    return "".join(out)


def interchange_sender(text: str) -> str:
    """ISA06: who sent the interchange (whom an answer goes back to)."""
    text = text.lstrip("\ufeff \r\n\t")
    if not text.startswith("ISA") or len(text) < ISA_LENGTH:
        raise X12Error("not an X12 interchange: no ISA segment at the start")
    return text.split(text[3])[6].strip()


@dataclass(frozen=True)
class Transaction:
    """One ST…SE transaction set as read: its code (270, 271, 835, 837) and its segments."""

    code: str
    control_number: str
    segments: tuple[Segment, ...]


def parse(text: str) -> list[Transaction]:
    """Every transaction set in an interchange, checked against its envelope counts."""
    text = text.lstrip("\ufeff \r\n\t")
    if not text.startswith("ISA") or len(text) < ISA_LENGTH:
        raise X12Error("not an X12 interchange: no ISA segment at the start")
    element, component, terminator = text[3], text[104], text[105]
    segments = [
        Segment(tuple(raw.split(element)), component) for raw in (s.strip() for s in text.split(terminator)) if raw
    ]
    if segments[-1].id != "IEA":
        raise X12Error("the interchange is truncated: it does not end with IEA")
    if segments[0][13] != segments[-1][2]:
        raise X12Error("ISA13 and IEA02 control numbers differ")
    transactions: list[Transaction] = []
    current: list[Segment] | None = None
    for seg in segments:
        if seg.id == "ST":
            if current is not None:
                raise X12Error("ST before the previous transaction set's SE")
            current = [seg]
        elif seg.id == "SE":
            if current is None:
                raise X12Error("SE without ST")
            current.append(seg)
            if seg[1] != str(len(current)):
                raise X12Error(f"SE01 says {seg[1]} segments, the transaction set has {len(current)}")
            if seg[2] != current[0][2]:
                raise X12Error("ST02 and SE02 control numbers differ")
            transactions.append(Transaction(code=current[0][1], control_number=current[0][2], segments=tuple(current)))
            current = None
        elif current is not None:
            current.append(seg)
    if current is not None:
        raise X12Error("a transaction set has no SE")
    if not transactions:
        raise X12Error("the interchange holds no transaction set")
    return transactions


def loops(segments: Sequence[Segment], start: str) -> Iterator[list[Segment]]:
    """Split a run of segments into loops that each begin with a ``start`` segment."""
    current: list[Segment] | None = None
    for seg in segments:
        if seg.id == start:
            if current is not None:
                yield current
            current = [seg]
        elif current is not None:
            current.append(seg)
    if current is not None:
        yield current
