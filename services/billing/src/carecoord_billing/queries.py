"""Billing's read side: what the routes present, one session per request, each list one SELECT (a page of it)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, Table, select

from carecoord_shared.auth import patient_of
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, read_page

from .models import charges, claims, coverages, denials, invoices

# The FHIR Claim search reads at most this many of a patient's claims, oldest first (the Bundle pages
# over them with _offset, carecoord_shared.http.fhir); the /v1 lists page with a cursor instead.
FHIR_SEARCH_MAX = 1000

# A patient's charges, claims and invoices, oldest first, the row id breaking ties so that no row is
# skipped or repeated between pages. Only times and ids: a cursor travels in URLs, so never PHI.
CHARGES_OLDEST = Ordering("charges.oldest", (SortKey(charges.c.created_at), SortKey(charges.c.charge_id)))
CLAIMS_OLDEST = Ordering("claims.oldest", (SortKey(claims.c.created_at), SortKey(claims.c.claim_id)))
INVOICES_OLDEST = Ordering("invoices.oldest", (SortKey(invoices.c.issued_at), SortKey(invoices.c.invoice_id)))
# The denial work queue as billers work it: by the payer's reason code, oldest first within a code.
DENIALS_QUEUE = Ordering(
    "denials.queue",
    (SortKey(denials.c.reason_code), SortKey(denials.c.denied_at), SortKey(denials.c.denial_id)),
)


async def _rows(uow: UnitOfWork, query: Select[Any]) -> list[dict[str, Any]]:
    async with uow.sessions() as session:
        return [r._asdict() for r in await session.execute(query)]


async def _page(uow: UnitOfWork, query: Select[Any], ordering: Ordering, page: PageRequest) -> dict[str, Any]:
    async with uow.sessions() as session:
        return await read_page(session, query, ordering, page)


def _of_patient(table: Table, patient_id: uuid.UUID) -> Select[Any]:
    return select(table).where(table.c.patient_id == patient_id)


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


async def patient_charges(uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest) -> dict[str, Any]:
    return await _page(uow, _of_patient(charges, patient_id), CHARGES_OLDEST, page)


async def patient_claims(uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest) -> dict[str, Any]:
    return await _page(uow, _of_patient(claims, patient_id), CLAIMS_OLDEST, page)


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
    """For the FHIR Claim search: a patient's first FHIR_SEARCH_MAX claims with their charges, oldest first."""
    query = (
        _claim_with_charge()
        .where(claims.c.patient_id == patient_id)
        .order_by(*CLAIMS_OLDEST.order_by())
        .limit(FHIR_SEARCH_MAX)
    )
    return await _rows(uow, query)


async def patient_invoices(uow: UnitOfWork, patient_id: uuid.UUID, page: PageRequest) -> dict[str, Any]:
    return await _page(uow, _of_patient(invoices, patient_id), INVOICES_OLDEST, page)


async def invoice_owner(uow: UnitOfWork, invoice_id: uuid.UUID) -> uuid.UUID:
    """The patient an invoice is for (404 for an unknown invoice)."""
    query = select(invoices.c.patient_id).where(invoices.c.invoice_id == invoice_id)
    return await patient_of(uow.sessions, query, f"no invoice {invoice_id}")


async def invoice(uow: UnitOfWork, invoice_id: uuid.UUID) -> dict[str, Any]:
    [row] = await _rows(uow, select(invoices).where(invoices.c.invoice_id == invoice_id))
    return row


async def open_denials(uow: UnitOfWork, page: PageRequest) -> dict[str, Any]:
    """One page of the denial work queue: open denials by reason code, oldest first within a code."""
    return await _page(uow, select(denials).where(denials.c.status == "open"), DENIALS_QUEUE, page)
