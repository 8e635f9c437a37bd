"""Billing's own settings (prefix CARECOORD_), beside the ones every service shares.

Defaults run locally: the clearinghouse is a pair of drop folders under
.local/, answered by the simulated payer in the same process.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from carecoord_shared.config import ServiceSettings


class PayerOutcome(StrEnum):
    """How the simulated payer adjudicates a claim."""

    paid = "paid"
    partially_paid = "partially_paid"
    denied = "denied"
    reversed = "reversed"


class ProviderIdentity(BaseSettings):
    """Who bills: the practice's identifiers as they appear in every X12 file (not PHI)."""

    model_config = SettingsConfigDict(env_prefix="CARECOORD_PROVIDER_", extra="ignore")

    name: str = "CARECOORD PSYCHIATRY PC"
    # A syntactically valid NPI (Luhn check digit) and EIN for local runs; production sets its own.
    npi: Annotated[str, Field(pattern=r"^\d{10}$")] = "1234567893"
    tax_id: Annotated[str, Field(pattern=r"^\d{9}$")] = "123456789"
    address_line1: str = "100 MAIN ST"
    city: str = "AUSTIN"
    state: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "TX"
    postal_code: Annotated[str, Field(pattern=r"^\d{9}$")] = "787010001"
    contact_name: str = "BILLING OFFICE"
    contact_phone: Annotated[str, Field(pattern=r"^\d{10}$")] = "5125550100"
    # Interchange ids agreed with the clearinghouse (ISA06/ISA08, GS02/GS03).
    submitter_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,15}$")] = "CARECOORD"
    receiver_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,15}$")] = "CLEARINGHOUSE"
    # T while testing with a clearinghouse, P in production (ISA15).
    usage: Annotated[str, Field(pattern=r"^[TP]$")] = "T"


class BillingSettings(ServiceSettings):
    service: Literal["billing"] = "billing"

    intake_url: str = "http://127.0.0.1:8001"
    # Billing's bearer token to intake (a service JWT from the identity provider). Empty: billing
    # mints its own with CARECOORD_AUTH_JWT_SECRET, which only a development intake accepts.
    intake_api_token: SecretStr = SecretStr("")
    demographics_timeout_s: float = 5.0

    # States where the practice is in network with payers; elsewhere a declared insurance is billed as self-pay.
    insurance_states: frozenset[str] = frozenset({"CA", "CO", "NY", "TX", "WA"})

    clearinghouse_dir: Path = Path(".local/clearinghouse")
    exchange_interval_s: float = 5.0
    exchange_enabled: bool = True
    max_claims_per_file: Annotated[int, Field(ge=1, le=5000)] = 500

    # The local stand-in for the payers on the far side of the clearinghouse.
    simulated_payer_enabled: bool = True
    simulated_payer_default_outcome: PayerOutcome = PayerOutcome.paid
    # member id -> outcome, e.g. CARECOORD_SIMULATED_PAYER_OUTCOMES='{"M123": "denied"}'
    simulated_payer_outcomes: dict[str, PayerOutcome] = Field(default_factory=dict)
    # Members the simulated payer reports as inactive in its 271s.
    simulated_payer_inactive_members: frozenset[str] = frozenset()

    # Self-pay invoices fall due this many days after issue.
    invoice_due_days: Annotated[int, Field(ge=0, le=120)] = 30
