"""HTTP routes: a patient's coverage, charges, claims and invoices; payments; the denial work queue;
an exchange cycle on demand. Each route authorises, calls one use case or query
(queries.py) and presents the answer; the models are schemas.py.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state AND related to them: on their care team or
assigned a review of theirs, learnt from scheduling and safety, ADR 0015; every patient
check is audited, an allowed one with its basis):

| route                                               | patient | clinician | operator | service |
|-----------------------------------------------------|---------|-----------|----------|---------|
| GET /patients/{id}/coverage, /charges, /claims, /invoices | own | licensed  | -        | any     |
| POST /invoices/{id}/payments                        | own     | -         | -        | any     |
| GET /denials                                        | -       | -         | -        | yes     |
| POST /clearinghouse/exchange                        | -       | -         | yes      | yes     |
| GET /patients/{id}/received-events                  | -       | licensed  | yes (2)  | any     |
| GET /fhir/R4/Coverage, /Claim (?patient=, /{id}) (3) | own   | licensed  | -        | any     |
| GET /fhir/R4/metadata (3)                           | yes     | yes       | yes      | yes     |

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
the system's own bookkeeping. (3) fhir.py through the shared fhir_router: the same
data as the coverage and claims reads, the same roles and audit rows ("read coverage",
"read claims"); the CapabilityStatement names no patient.

The lists (a patient's charges, claims and invoices; the denial queue) answer a page at a time
(``?limit=&cursor=``, carecoord_shared.pagination); the FHIR Claim search pages its Bundle on its own.

A change's check and audit row run in the change's own transaction
(``Access.transaction``): one commit; a refusal commits its denied row alone, and
a change that then fails (409, 422) still leaves its allowed row.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Response, status

from carecoord_shared.auth import Access, Role
from carecoord_shared.http import IDEMPOTENT, PageDep, UowDep, allow
from carecoord_shared.pagination import Page

from . import invoicing, queries
from .exchange import ExchangeService
from .schemas import Charge, Claim, Coverage, Denial, ExchangeCycle, Invoice, PaymentIn

# Access as each kind of route needs it (see the table above).
PatientCare = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Payer = Annotated[Access, allow(Role.PATIENT, Role.SERVICE)]
BillingOffice = Annotated[Access, allow(Role.SERVICE)]
Operations = Annotated[Access, allow(Role.OPERATOR, Role.SERVICE)]


def build_router(exchange: ExchangeService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/patients/{patient_id}/coverage", response_model=Coverage, tags=["coverage"])
    async def patient_coverage(patient_id: uuid.UUID, uow: UowDep, access: PatientCare) -> dict[str, Any]:
        await access.patient(patient_id, "read", "coverage")
        return await queries.coverage(uow, patient_id)

    @router.get(
        "/patients/{patient_id}/charges",
        response_model=Page[Charge],
        tags=["charges"],
        summary="A patient's charges, oldest first, a page at a time",
    )
    async def patient_charges(patient_id: uuid.UUID, uow: UowDep, access: PatientCare, page: PageDep) -> dict[str, Any]:
        await access.patient(patient_id, "read", "charges")
        return await queries.patient_charges(uow, patient_id, page)

    @router.get(
        "/patients/{patient_id}/claims",
        response_model=Page[Claim],
        tags=["claims"],
        summary="A patient's claims, oldest first, a page at a time",
    )
    async def patient_claims(patient_id: uuid.UUID, uow: UowDep, access: PatientCare, page: PageDep) -> dict[str, Any]:
        await access.patient(patient_id, "read", "claims")
        return await queries.patient_claims(uow, patient_id, page)

    @router.get(
        "/patients/{patient_id}/invoices",
        response_model=Page[Invoice],
        tags=["self-pay"],
        summary="A patient's invoices, oldest first, a page at a time",
    )
    async def patient_invoices(
        patient_id: uuid.UUID, uow: UowDep, access: PatientCare, page: PageDep
    ) -> dict[str, Any]:
        await access.patient(patient_id, "read", "invoices")
        return await queries.patient_invoices(uow, patient_id, page)

    @router.post(
        "/invoices/{invoice_id}/payments",
        response_model=Invoice,
        tags=["self-pay"],
        status_code=status.HTTP_201_CREATED,
        responses={200: {"description": "This payment id was already recorded; the invoice is returned unchanged."}},
        dependencies=[IDEMPOTENT],
    )
    async def pay(
        invoice_id: uuid.UUID, body: PaymentIn, uow: UowDep, response: Response, access: Payer
    ) -> dict[str, Any]:
        owner = await queries.invoice_owner(uow, invoice_id)  # 404 for an unknown invoice, before any audit row
        async with access.transaction(uow, owner, "pay", "invoice", invoice_id) as tx:
            recorded = await invoicing.record_payment(tx, invoice_id, **body.model_dump())
        if not recorded:
            response.status_code = status.HTTP_200_OK
        return await queries.invoice(uow, invoice_id)

    @router.get(
        "/denials",
        response_model=Page[Denial],
        tags=["claims"],
        summary="The denial work queue: open denials by reason code, oldest first within a code, a page at a time",
    )
    async def denial_queue(uow: UowDep, access: BillingOffice, page: PageDep) -> dict[str, Any]:
        await access.record("list", "denials")
        return await queries.open_denials(uow, page)

    @router.post(
        "/clearinghouse/exchange",
        response_model=ExchangeCycle,
        tags=["clearinghouse"],
        summary="Run one exchange cycle now (send claims and inquiries, post what came back)",
    )
    async def exchange_now(access: Operations) -> dict[str, Any]:
        await access.record("run", "clearinghouse-exchange")
        return (await exchange.run_once()).__dict__

    return router
