"""Billing's read side: what the routes present, one session per request, each list one SELECT."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, Table, select

from carecoord_shared.auth import patient_of
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from .models import charges, claims, coverages, denials, invoices

# A patient's charges, claims or invoices: at most this many, oldest first.
PAGE = 1000


async def _rows(uow: UnitOfWork, query: Select[Any]) -> list[dict[str, Any]]:
    async with uow.sessions() as session:
        return [r._asdict() for r in await session.execute(query)]


def _of_patient(table: Table, patient_id: uuid.UUID) -> Select[Any]:
    return select(table).where(table.c.patient_id == patient_id).order_by(table.c.created_at).limit(PAGE)


async def coverage(uow: UnitOfWork, patient_id: uuid.UUID) -> dict[str, Any]:
    rows = await _rows(uow, select(coverages).where(coverages.c.patient_id == patient_id))
    if not rows:
        raise NotFound(f"no coverage declared for patient {patient_id}")
    return rows[0]


async def coverage_owner(uow: UnitOfWork, coverage_id: uuid.UUID) -> uuid.UUID:
    """The patient a coverage is of (404 for an unknown or superseded coverage)."""
    query = select(coverages.c.patient_id).where(coverages.c.coverage_id == coverage_id)
    return await patient_of(uow.sessions, query, f"no coverage {coverage_id}")


async def coverage_by_id(uow: UnitOfWork, coverage_id: uuid.UUID) -> dict[str, Any]:
    rows = await _rows(uow, select(coverages).where(coverages.c.coverage_id == coverage_id))
    if not rows:
        raise NotFound(f"no coverage {coverage_id}")
    return rows[0]


async def patient_coverages(uow: UnitOfWork, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    """The patient's coverage as a list: none until a declaration arrives, else the latest one."""
    return await _rows(uow, select(coverages).where(coverages.c.patient_id == patient_id))


async def patient_charges(uow: UnitOfWork, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    return await _rows(uow, _of_patient(charges, patient_id))


async def patient_claims(uow: UnitOfWork, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    return await _rows(uow, _of_patient(claims, patient_id))


def _claim_with_charge() -> Select[Any]:
    """A claim with what its charge says was done (codes, modifiers, place and date of service)."""
    return select(
        claims, charges.c.lines, charges.c.modifiers, charges.c.place_of_service, charges.c.service_date
    ).join(charges, charges.c.charge_id == claims.c.charge_id)


async def claim_owner(uow: UnitOfWork, claim_id: uuid.UUID) -> uuid.UUID:
    """The patient a claim is for (404 for an unknown claim)."""
    return await patient_of(
        uow.sessions, select(claims.c.patient_id).where(claims.c.claim_id == claim_id), f"no claim {claim_id}"
    )


async def claim_detail(uow: UnitOfWork, claim_id: uuid.UUID) -> dict[str, Any]:
    rows = await _rows(uow, _claim_with_charge().where(claims.c.claim_id == claim_id))
    if not rows:
        raise NotFound(f"no claim {claim_id}")
    return rows[0]


async def patient_claim_details(uow: UnitOfWork, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    query = _claim_with_charge().where(claims.c.patient_id == patient_id).order_by(claims.c.created_at).limit(PAGE)
    return await _rows(uow, query)


async def patient_invoices(uow: UnitOfWork, patient_id: uuid.UUID) -> list[dict[str, Any]]:
    query = select(invoices).where(invoices.c.patient_id == patient_id).order_by(invoices.c.issued_at).limit(PAGE)
    return await _rows(uow, query)


async def invoice_owner(uow: UnitOfWork, invoice_id: uuid.UUID) -> uuid.UUID:
    """The patient an invoice is for (404 for an unknown invoice)."""
    query = select(invoices.c.patient_id).where(invoices.c.invoice_id == invoice_id)
    return await patient_of(uow.sessions, query, f"no invoice {invoice_id}")


async def invoice(uow: UnitOfWork, invoice_id: uuid.UUID) -> dict[str, Any]:
    [row] = await _rows(uow, select(invoices).where(invoices.c.invoice_id == invoice_id))
    return row


async def open_denials(uow: UnitOfWork) -> list[dict[str, Any]]:
    """The denial work queue: open denials by reason code, oldest first within a code."""
    query = (
        select(denials)
        .where(denials.c.status == "open")
        .order_by(denials.c.reason_code, denials.c.denied_at)
        .limit(PAGE)
    )
    return await _rows(uow, query)
