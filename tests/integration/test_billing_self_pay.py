"""Self-pay: a course package covers the sessions, other visits are invoiced one by one;
payments are recorded once per payment id and never beyond what is due."""

from __future__ import annotations

import uuid

import pytest

from carecoord_billing import fees, invoicing
from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_shared.errors import RuleViolation
from tests.integration.billing_harness import Billing, completed, declare, outbox_types

PACKAGE = fees.load().package


async def invoices_of(billing: Billing, patient: uuid.UUID) -> list:
    return await billing.fetch("SELECT * FROM invoices WHERE patient_id = $1 ORDER BY issued_at", patient)


async def test_a_package_covers_its_sessions_and_the_next_session_starts_a_new_one(billing: Billing) -> None:
    patient = uuid.uuid4()
    await declare(billing, patient)
    await billing.publish(completed(uuid.uuid4(), AppointmentType.initial_evaluation), patient, "scheduling")
    await billing.publish(completed(uuid.uuid4(), AppointmentType.preparation), patient, "scheduling")
    for _ in range(PACKAGE.sessions):
        await billing.publish(completed(uuid.uuid4(), AppointmentType.dosing_session), patient, "scheduling")
        await billing.publish(completed(uuid.uuid4(), AppointmentType.integration), patient, "scheduling")
    await billing.publish(completed(uuid.uuid4(), AppointmentType.dosing_session), patient, "scheduling")

    visit, first, second = await invoices_of(billing, patient)
    assert (visit["kind"], visit["amount_cents"]) == ("visit", 45000)
    assert (first["kind"], first["amount_cents"], first["sessions_used"]) == (
        "package",
        PACKAGE.cents,
        PACKAGE.sessions,
    )
    assert (second["kind"], second["sessions_used"]) == ("package", 1)
    on_first = await billing.fetch("SELECT count(*) FROM charges WHERE invoice_id = $1", first["invoice_id"])
    assert on_first[0][0] == 1 + 2 * PACKAGE.sessions, "preparation, every session and its integration"
    assert (await outbox_types(billing, patient)).count("InvoiceIssued") == 3


async def test_payments_are_recorded_once_and_never_beyond_the_amount_due(billing: Billing) -> None:
    patient = uuid.uuid4()
    await declare(billing, patient, CoverageKind.insurance, "FL", "ACME1")  # insurance is not taken in FL
    await billing.publish(completed(uuid.uuid4(), AppointmentType.follow_up), patient, "scheduling")
    [invoice] = await invoices_of(billing, patient)
    first, rest = uuid.uuid4(), uuid.uuid4()

    async def pay(payment_id: uuid.UUID, cents: int) -> bool:
        async with billing.uow.transaction() as tx:
            return await invoicing.record_payment(
                tx, invoice["invoice_id"], payment_id=payment_id, amount_cents=cents, method="card"
            )

    assert await pay(first, 12000) is True
    assert await pay(first, 12000) is False, "the same payment retried"
    with pytest.raises(RuleViolation, match="more than the 20000 cents still due"):
        await pay(uuid.uuid4(), 20001)
    assert await pay(rest, 20000) is True
    [paid] = await invoices_of(billing, patient)
    assert (paid["paid_cents"], paid["status"]) == (32000, "paid")
