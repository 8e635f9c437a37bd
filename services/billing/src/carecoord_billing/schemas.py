"""HTTP request and response models of billing, with their bounds."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChargeLine(BaseModel):
    cpt: str
    cents: int


class Charge(BaseModel):
    charge_id: uuid.UUID
    invoice_id: uuid.UUID | None
    appointment_id: uuid.UUID
    appointment_type: str
    service_date: date
    place_of_service: str
    modifiers: list[str]
    lines: list[ChargeLine]
    amount_cents: int
    self_pay: bool | None
    payer_id: str | None
    fee_schedule_version: str
    status: str
    void_reason: str | None
    created_at: datetime


class Claim(BaseModel):
    claim_id: uuid.UUID
    claim_number: str
    charge_id: uuid.UUID
    payer_id: str
    total_cents: int
    status: str
    paid_cents: int
    patient_responsibility_cents: int
    submitted_at: datetime | None
    adjudicated_at: datetime | None


class Coverage(BaseModel):
    coverage_id: uuid.UUID
    kind: str
    payer_id: str | None
    state_of_residence: str
    billable_to_payer: bool
    verification_status: str
    declared_at: datetime
    verified_at: datetime | None


class Denial(BaseModel):
    denial_id: uuid.UUID
    claim_id: uuid.UUID
    patient_id: uuid.UUID
    group_code: str
    reason_code: str
    amount_cents: int
    status: str
    denied_at: datetime


class Invoice(BaseModel):
    invoice_id: uuid.UUID
    kind: str
    amount_cents: int
    paid_cents: int
    status: str
    sessions_included: int | None
    sessions_used: int
    issued_at: datetime
    due_on: date


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: uuid.UUID = Field(description="Client-generated; sending the same payment again records it once.")
    amount_cents: Annotated[int, Field(gt=0, le=100_000_000, strict=True, description="integer cents")]
    method: Literal["card", "ach", "cash", "check"]


class ExchangeCycle(BaseModel):
    interchanges_sent: list[int]
    answers_from_payer: int
    files_posted: list[str]
    files_rejected: list[str]
