"""The people and organisations named in our X12 files.

A ``Subscriber`` holds PHI fetched from intake for the one file being written:
it is never logged, stored or put on an event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

# X12's basic character set (uppercase); anything else in a name or address becomes a space.
_NOT_BASIC = re.compile(r"[^A-Z0-9 !&'()+,\-./;?=]")


def text(value: str, max_length: int) -> str:
    return " ".join(_NOT_BASIC.sub(" ", value.upper()).split())[:max_length]


@dataclass(frozen=True)
class Subscriber:
    """The patient as their own subscriber (relationship 18: self)."""

    first_name: str
    last_name: str
    date_of_birth: date
    sex: str
    line1: str
    city: str
    state: str
    postal_code: str
    member_id: str

    def __repr__(self) -> str:  # PHI: never in a log line or a traceback
        return "Subscriber(<redacted>)"


@dataclass(frozen=True)
class Payer:
    id: str
    name: str = field(default="")

    @property
    def display_name(self) -> str:
        return text(self.name or self.id, 60)


class Provider(Protocol):
    """Who bills, as every file names them (the settings' ProviderIdentity is one): not PHI."""

    @property
    def name(self) -> str: ...
    @property
    def npi(self) -> str: ...
    @property
    def tax_id(self) -> str: ...
    @property
    def address_line1(self) -> str: ...
    @property
    def city(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def postal_code(self) -> str: ...
    @property
    def contact_name(self) -> str: ...
    @property
    def contact_phone(self) -> str: ...
    @property
    def submitter_id(self) -> str: ...
    @property
    def receiver_id(self) -> str: ...
    @property
    def usage(self) -> str: ...
