"""HTTP API: a patient's coverage, charges, claims and invoices; payments; the denial work queue;
an exchange cycle on demand."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, select

from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import invoicing
from .models import charges, claims, coverages, denials, invoices


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


async def _rows(uow: UowDep, query: Any) -> list[dict[str, Any]]:
    async with uow.sessions() as session:
        return [r._asdict() for r in await session.execute(query)]


def _of_patient(table: Table, patient_id: uuid.UUID) -> Any:
    return select(table).where(table.c.patient_id == patient_id).order_by(table.c.created_at).limit(1000)


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


def build_router(lifespan: Any = None) -> APIRouter:
    router = APIRouter(prefix="/v1", lifespan=lifespan)

    @router.get("/patients/{patient_id}/coverage", response_model=Coverage, tags=["coverage"])
    async def patient_coverage(patient_id: uuid.UUID, uow: UowDep) -> Any:
        rows = await _rows(uow, select(coverages).where(coverages.c.patient_id == patient_id))
        if not rows:
            raise NotFound(f"no coverage declared for patient {patient_id}")
        return rows[0]

    @router.get("/patients/{patient_id}/charges", response_model=list[Charge], tags=["charges"])
    async def patient_charges(patient_id: uuid.UUID, uow: UowDep) -> Any:
        return await _rows(uow, _of_patient(charges, patient_id))

    @router.get("/patients/{patient_id}/claims", response_model=list[Claim], tags=["claims"])
    async def patient_claims(patient_id: uuid.UUID, uow: UowDep) -> Any:
        return await _rows(uow, _of_patient(claims, patient_id))

    @router.get("/patients/{patient_id}/invoices", response_model=list[Invoice], tags=["self-pay"])
    async def patient_invoices(patient_id: uuid.UUID, uow: UowDep) -> Any:
        query = select(invoices).where(invoices.c.patient_id == patient_id).order_by(invoices.c.issued_at).limit(1000)
        return await _rows(uow, query)

    @router.post(
        "/invoices/{invoice_id}/payments",
        response_model=Invoice,
        tags=["self-pay"],
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "This payment id was already recorded; the invoice is returned unchanged."}},
    )
    async def pay(invoice_id: uuid.UUID, body: PaymentIn, uow: UowDep, response: Response) -> Any:
        async with uow.transaction() as tx:
            recorded = await invoicing.record_payment(
                tx, invoice_id, payment_id=body.payment_id, amount_cents=body.amount_cents, method=body.method
            )
        if not recorded:
            response.status_code = status.HTTP_200_OK
        [row] = await _rows(uow, select(invoices).where(invoices.c.invoice_id == invoice_id))
        return row

    @router.get(
        "/denials",
        response_model=list[Denial],
        tags=["claims"],
        summary="The denial work queue: open denials by reason code, oldest first within a code",
    )
    async def denial_queue(uow: UowDep) -> Any:
        query = (
            select(denials)
            .where(denials.c.status == "open")
            .order_by(denials.c.reason_code, denials.c.denied_at)
            .limit(1000)
        )
        return await _rows(uow, query)

    @router.post(
        "/clearinghouse/exchange",
        response_model=ExchangeCycle,
        tags=["clearinghouse"],
        summary="Run one exchange cycle now (send claims and inquiries, post what came back)",
    )
    async def exchange_now(request: Request) -> Any:
        return (await request.app.state.billing_exchange.run_once()).__dict__

    return router
