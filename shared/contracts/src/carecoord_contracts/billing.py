"""Events produced by the billing and insurance service (topics billing.coverage,
billing.charges, billing.claims). Money is integer cents, never float."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from .common import Cents, CptCode, ShortCode, SignedCents
from .envelope import Event

PayerId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")]


class CoverageStatus(StrEnum):
    active = "active"
    inactive = "inactive"
    unknown = "unknown"


class CoverageVerified(Event):
    """The payer's 271 answer to our 270, correlated by its trace number."""

    event_type = "CoverageVerified"
    version = 1

    coverage_id: uuid.UUID
    verification_id: uuid.UUID
    payer_id: PayerId
    status: CoverageStatus


class ChargeCreated(Event):
    event_type = "ChargeCreated"
    version = 1

    charge_id: uuid.UUID
    appointment_id: uuid.UUID
    cpt_codes: Annotated[list[CptCode], Field(min_length=1, max_length=10)]
    modifiers: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]], Field(max_length=4)]
    place_of_service: Annotated[str, Field(pattern=r"^\d{2}$")]
    amount_cents: Cents
    self_pay: bool


class ChargeVoided(Event):
    event_type = "ChargeVoided"
    version = 1

    charge_id: uuid.UUID
    appointment_id: uuid.UUID
    reason: ShortCode


class ClaimSubmitted(Event):
    event_type = "ClaimSubmitted"
    version = 1

    claim_id: uuid.UUID
    charge_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=50)]
    payer_id: PayerId
    total_cents: Cents


class Adjustment(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    group: Annotated[str, Field(pattern=r"^(CO|PR|OA|PI|CR)$")]
    reason_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,5}$")]
    amount_cents: SignedCents


class RemittancePosted(Event):
    event_type = "RemittancePosted"
    version = 1

    claim_id: uuid.UUID
    paid_cents: SignedCents
    patient_responsibility_cents: SignedCents
    adjustments: Annotated[list[Adjustment], Field(max_length=50)]
    reversal: bool = False


class ClaimDenied(Event):
    event_type = "ClaimDenied"
    version = 1

    claim_id: uuid.UUID
    reason_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,5}$")]


class InvoiceIssued(Event):
    """A self-pay invoice."""

    event_type = "InvoiceIssued"
    version = 1

    invoice_id: uuid.UUID
    amount_cents: Cents
    due_on: date
