"""HTTP API: a patient's coverage, charges and claims; the denial work queue; an exchange cycle on demand."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import Table, select

from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from .models import charges, claims, coverages, denials


class ChargeLine(BaseModel):
    cpt: str
    cents: int


class Charge(BaseModel):
    charge_id: uuid.UUID
    appointment_id: uuid.UUID
    appointment_type: str
    service_date: date
    place_of_service: str
    modifiers: list[str]
    lines: list[ChargeLine]
    amount_cents: int
    self_pay: bool
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
