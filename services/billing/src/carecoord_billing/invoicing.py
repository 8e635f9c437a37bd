"""Self-pay: invoices (per visit, or a course package) and the payments against them.

A self-pay charge is invoiced in the transaction that creates it. Sessions the
course package covers go on the patient's current package (a dosing session
uses one of its sessions; a new package is issued when none is left); other
visits get an invoice of their own at list price.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from carecoord_contracts.billing import InvoiceIssued
from carecoord_contracts.common import AppointmentType
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from . import domain
from .fees import FeeSchedule
from .models import charges, invoices, payments

log = structlog.get_logger("carecoord.billing.invoicing")


@dataclass(frozen=True)
class SelfPayCharge:
    charge_id: uuid.UUID
    patient_id: uuid.UUID
    appointment_type: AppointmentType
    amount_cents: int


async def invoice(
    tx: Transaction, fees: FeeSchedule, charge: SelfPayCharge, *, due_days: int, now: datetime | None = None
) -> uuid.UUID:
    """Put a self-pay charge on an invoice; returns the invoice's id."""
    now = now or datetime.now(UTC)
    package = fees.package
    if charge.appointment_type in package.covers:
        # Two sessions invoiced at once (a rebalance) must not both open a first package.
        await tx.lock_patient(charge.patient_id)
        current = (
            await tx.session.execute(
                select(invoices)
                .where(invoices.c.patient_id == charge.patient_id, invoices.c.kind == "package")
                .order_by(invoices.c.issued_at.desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        placement = domain.package_placement(current, charge.appointment_type)
        if placement.issue_new:
            invoice_id = await _issue(
                tx, charge.patient_id, "package", package.cents, now, due_days, sessions=package.sessions
            )
        else:
            assert current is not None
            invoice_id = current.invoice_id
        if placement.uses_session:
            await tx.session.execute(
                update(invoices)
                .where(invoices.c.invoice_id == invoice_id)
                .values(sessions_used=invoices.c.sessions_used + 1)
            )
    else:
        invoice_id = await _issue(tx, charge.patient_id, "visit", charge.amount_cents, now, due_days)
    await tx.session.execute(
        update(charges).where(charges.c.charge_id == charge.charge_id).values(status="invoiced", invoice_id=invoice_id)
    )
    return invoice_id


async def release(tx: Transaction, invoice_id: uuid.UUID, appointment_type: AppointmentType) -> None:
    """A voided charge's share of its invoice: a package session back, or an unpaid visit invoice voided."""
    current = (
        await tx.session.execute(select(invoices).where(invoices.c.invoice_id == invoice_id).with_for_update())
    ).one()
    if current.kind == "package":
        if appointment_type == AppointmentType.dosing_session and current.sessions_used > 0:
            await tx.session.execute(
                update(invoices)
                .where(invoices.c.invoice_id == invoice_id)
                .values(sessions_used=invoices.c.sessions_used - 1)
            )
    elif current.paid_cents == 0:
        await tx.session.execute(update(invoices).where(invoices.c.invoice_id == invoice_id).values(status="void"))
    else:
        # Money was taken for it: a refund is a person's decision, not an automatic one.
        log.warning("invoice.paid_visit_voided", invoice_id=str(invoice_id))


async def _issue(
    tx: Transaction,
    patient_id: uuid.UUID,
    kind: str,
    amount: int,
    now: datetime,
    due_days: int,
    sessions: int | None = None,
) -> uuid.UUID:
    invoice_id = uuid.uuid4()
    due_on = (now + timedelta(days=due_days)).date()
    await tx.session.execute(
        insert(invoices).values(
            invoice_id=invoice_id,
            patient_id=patient_id,
            kind=kind,
            amount_cents=amount,
            sessions_included=sessions,
            issued_at=now,
            due_on=due_on,
        )
    )
    tx.emit(InvoiceIssued(invoice_id=invoice_id, amount_cents=amount, due_on=due_on), patient_id=patient_id)
    log.info("invoice.issued", patient_id=str(patient_id), invoice_id=str(invoice_id), kind=kind, amount_cents=amount)
    return invoice_id


async def record_payment(
    tx: Transaction, invoice_id: uuid.UUID, *, payment_id: uuid.UUID, amount_cents: int, method: str
) -> bool:
    """Record a payment; False when this payment id was already recorded (a retry)."""
    current = (
        await tx.session.execute(select(invoices).where(invoices.c.invoice_id == invoice_id).with_for_update())
    ).first()
    if current is None:
        raise NotFound(f"no invoice {invoice_id}")
    if current.status == "void":
        raise RuleViolation(f"invoice {invoice_id} is void: nothing is due on it")
    inserted = await tx.session.scalar(
        insert(payments)
        .values(payment_id=payment_id, invoice_id=invoice_id, amount_cents=amount_cents, method=method)
        .on_conflict_do_nothing()
        .returning(payments.c.payment_id)
    )
    if inserted is None:
        recorded = await tx.session.scalar(select(payments.c.invoice_id).where(payments.c.payment_id == payment_id))
        if recorded != invoice_id:
            raise RuleViolation(f"payment {payment_id} was recorded against another invoice")
        return False
    paid = domain.pay(amount_cents=current.amount_cents, paid_cents=current.paid_cents, payment_cents=amount_cents)
    await tx.session.execute(
        update(invoices)
        .where(invoices.c.invoice_id == invoice_id)
        .values(paid_cents=paid.paid_cents, status=paid.status)
    )
    log.info("invoice.payment_recorded", invoice_id=str(invoice_id), amount_cents=amount_cents)
    return True
