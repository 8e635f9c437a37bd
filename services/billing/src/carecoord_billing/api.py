"""HTTP API: a patient's coverage, charges, claims and invoices; payments; the denial work queue;
an exchange cycle on demand.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state; every patient check is audited):

| route                                               | patient | clinician | operator | service |
|-----------------------------------------------------|---------|-----------|----------|---------|
| GET /patients/{id}/coverage, /charges, /claims, /invoices | own | licensed  | -        | any     |
| POST /invoices/{id}/payments                        | own     | -         | -        | any     |
| GET /denials                                        | -       | -         | -        | yes     |
| POST /clearinghouse/exchange                        | -       | -         | yes      | yes     |
| GET /patients/{id}/received-events                  | -       | licensed  | yes (2)  | any     |

A patient's coverage, charges, claims and invoices are PHI: the patient reads
their own, a clinician those of patients they are licensed for (what a course
costs the patient is part of care), a service any. Payments are the patient
paying their own invoice, or the billing office / payment processor as a
service; a clinician takes no money. The denial queue lists patients across
every state with payers' reason codes: billing staff work it, and billing staff
call as a service (the identity provider issues them no clinician licences), so
the queue admits services only. Running an exchange cycle moves files and
answers with counts and file names only, no patient data: it is operating the
system, for operators and services. (2) journal_router: which events arrived,
the system's own bookkeeping.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, select

from carecoord_shared.auth import Access, Role, allow
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import invoicing
from .exchange import ExchangeService
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


# Access as each kind of route needs it (see the table above).
PatientCare = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Payer = Annotated[Access, allow(Role.PATIENT, Role.SERVICE)]
BillingOffice = Annotated[Access, allow(Role.SERVICE)]
Operations = Annotated[Access, allow(Role.OPERATOR, Role.SERVICE)]


def build_router(exchange: ExchangeService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/patients/{patient_id}/coverage", response_model=Coverage, tags=["coverage"])
    async def patient_coverage(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "coverage")
        rows = await _rows(uow, select(coverages).where(coverages.c.patient_id == patient_id))
        if not rows:
            raise NotFound(f"no coverage declared for patient {patient_id}")
        return rows[0]

    @router.get("/patients/{patient_id}/charges", response_model=list[Charge], tags=["charges"])
    async def patient_charges(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "charges")
        return await _rows(uow, _of_patient(charges, patient_id))

    @router.get("/patients/{patient_id}/claims", response_model=list[Claim], tags=["claims"])
    async def patient_claims(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "claims")
        return await _rows(uow, _of_patient(claims, patient_id))

    @router.get("/patients/{patient_id}/invoices", response_model=list[Invoice], tags=["self-pay"])
    async def patient_invoices(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
        await access.patient(patient_id, "read", "invoices")
        query = select(invoices).where(invoices.c.patient_id == patient_id).order_by(invoices.c.issued_at).limit(1000)
        return await _rows(uow, query)

    @router.post(
        "/invoices/{invoice_id}/payments",
        response_model=Invoice,
        tags=["self-pay"],
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "This payment id was already recorded; the invoice is returned unchanged."}},
    )
    async def pay(invoice_id: uuid.UUID, body: PaymentIn, uow: UowDep, response: Response, access: Payer) -> Any:
        owner = await _rows(uow, select(invoices.c.patient_id).where(invoices.c.invoice_id == invoice_id))
        if not owner:
            raise NotFound(f"no invoice {invoice_id}")
        await access.patient(owner[0]["patient_id"], "pay", "invoice", invoice_id)
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
    async def denial_queue(uow: UowDep, access: BillingOffice) -> Any:
        await access.record("list", "denials")
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
    async def exchange_now(access: Operations) -> Any:
        await access.record("run", "clearinghouse-exchange")
        return (await exchange.run_once()).__dict__

    return router
