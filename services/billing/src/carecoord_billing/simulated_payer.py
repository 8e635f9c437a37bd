"""A local stand-in for the payers behind the clearinghouse."""

from __future__ import annotations

from enum import StrEnum


class PayerOutcome(StrEnum):
    paid = "paid"
    partially_paid = "partially_paid"
    denied = "denied"
    reversed = "reversed"
