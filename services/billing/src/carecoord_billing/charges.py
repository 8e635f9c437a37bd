"""Charges: one per billable completed appointment, voided when a hold cancels it.

The unique constraint on the appointment id is the guarantee, not the inbox:
a completion redelivered under a new event id still finds the first charge.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Row, Select, bindparam, literal_column, select, true, update

from carecoord_contracts.billing import ChargeCreated, ChargeVoided
from carecoord_contracts.common import AppointmentType
from carecoord_contracts.scheduling import AppointmentCancelled, AppointmentCompleted
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.statements import insert_new, insert_new_returning

from . import domain, invoicing
from .coverage import billed_party
from .fees import FeeSchedule
from .models import charges, held_cancellations, patients

CHARGE_COLUMNS = tuple(charges.c.keys())

log = structlog.get_logger("carecoord.billing.charges")

# Cancellations with this reason are never billed (domain.md, headline flow step 5).
TREATMENT_HOLD = "treatment_hold"
# A charge made before the patient's coverage declaration reached billing.
AWAITING_COVERAGE = "awaiting_coverage"


async def charge_completed(
    tx: Transaction,
    fees: FeeSchedule,
    *,
    patient_id: uuid.UUID,
    event: AppointmentCompleted,
    invoice_due_days: int = 30,
) -> uuid.UUID | None:
    """Create the appointment's charge; returns its id, or None when nothing was charged.

    The charge is announced (ChargeCreated) and, for self-pay, invoiced once the
    patient's coverage is known: now, or when the declaration arrives.
    """
    bound = log.bind(patient_id=str(patient_id), appointment_id=str(event.appointment_id))
    priced = fees.price(event.appointment_type, video=event.video, new_patient=event.new_patient)
    if priced is None:
        bound.info("charge.not_billable", appointment_type=event.appointment_type.value)
        return None
    held = await tx.session.scalar(
        select(held_cancellations.c.appointment_id).where(held_cancellations.c.appointment_id == event.appointment_id)
    )
    if held is not None:
        bound.warning("charge.skipped_held_appointment")
        return None

    party = await billed_party(tx, patient_id)
    zone_name = await tx.session.scalar(select(patients.c.time_zone).where(patients.c.patient_id == patient_id))
    charge_id = uuid.uuid4()
    values = {
        "charge_id": charge_id,
        "appointment_id": event.appointment_id,
        "patient_id": patient_id,
        "appointment_type": event.appointment_type.value,
        "service_date": domain.service_date(event.started_at, zone_name),
        "place_of_service": priced.place_of_service,
        "modifiers": list(priced.modifiers),
        "lines": [{"cpt": line.cpt, "cents": line.cents} for line in priced.lines],
        "amount_cents": priced.amount_cents,
        "self_pay": (party.payer_id is None) if party.known else None,
        "payer_id": party.payer_id,
        "fee_schedule_version": priced.fee_schedule_version,
        "status": "open" if party.known else AWAITING_COVERAGE,
    }
    # Compiled once (the dialect's on_conflict_do_nothing insert has no cache key).
    row = await insert_new_returning(tx.session, charges, "uq_charges_appointment", CHARGE_COLUMNS, **values)
    if row is None:
        bound.info("charge.already_exists")
        return None
    if not party.known:
        # Coverage travels on another topic and may arrive after the visit: the charge waits for it.
        bound.info("charge.awaiting_coverage", charge_id=str(charge_id))
        return charge_id
    await _bill(tx, fees, row, invoice_due_days)
    return charge_id


async def bill_awaiting(
    tx: Transaction, fees: FeeSchedule, *, patient_id: uuid.UUID, invoice_due_days: int = 30
) -> int:
    """Coverage is now known: bill the charges that were waiting for it; returns how many."""
    party = await billed_party(tx, patient_id)
    if not party.known:
        return 0
    rows = (
        await tx.session.execute(
            update(charges)
            .where(charges.c.patient_id == patient_id, charges.c.status == AWAITING_COVERAGE)
            .values(status="open", self_pay=party.payer_id is None, payer_id=party.payer_id)
            .returning(charges)
        )
    ).all()
    for row in sorted(rows, key=lambda r: r.created_at):
        await _bill(tx, fees, row, invoice_due_days)
    return len(rows)


async def _bill(tx: Transaction, fees: FeeSchedule, row: Row[Any], invoice_due_days: int) -> None:
    """Announce a charge whose payer is known, and invoice it at once when the patient pays."""
    tx.emit(
        ChargeCreated(
            charge_id=row.charge_id,
            appointment_id=row.appointment_id,
            cpt_codes=[line["cpt"] for line in row.lines],
            modifiers=list(row.modifiers),
            place_of_service=row.place_of_service,
            amount_cents=row.amount_cents,
            self_pay=row.self_pay,
        ),
        patient_id=row.patient_id,
    )
    log.info(
        "charge.created",
        patient_id=str(row.patient_id),
        charge_id=str(row.charge_id),
        amount_cents=row.amount_cents,
        self_pay=row.self_pay,
    )
    if row.self_pay:
        charge = invoicing.SelfPayCharge(
            row.charge_id, row.patient_id, AppointmentType(row.appointment_type), row.amount_cents
        )
        await invoicing.invoice(tx, fees, charge, due_days=invoice_due_days)


def _void_statement() -> Select[Any]:
    """The void of the appointment's charge and, when there was nothing to void, its status (``billed``; None: no
    charge): one statement and one row, where the update and the select after it were two round trips. Built once
    with its values bound (a statement of a CTE built per event cost more CPU than the round trip saved); the
    binds are named unlike any column, or an update given a column's name as a parameter would also SET it."""
    appointment_id = bindparam("cancelled_appointment", type_=charges.c.appointment_id.type)
    voiding = (
        update(charges)
        .where(
            charges.c.appointment_id == appointment_id, charges.c.status.in_(("open", "invoiced", AWAITING_COVERAGE))
        )
        .values(status="voided", void_reason=bindparam("cancel_reason"), voided_at=bindparam("cancelled_at"))
        .returning(charges.c.charge_id, charges.c.invoice_id, charges.c.appointment_type, charges.c.self_pay)
        .cte("voided")
    )
    billed = select(charges.c.status).where(charges.c.appointment_id == appointment_id).scalar_subquery()
    one = select(literal_column("1").label("one")).subquery("one")
    return select(*voiding.c, billed.label("billed")).select_from(one.outerjoin(voiding, true()))


_VOID = _void_statement()


async def cancelled(tx: Transaction, *, patient_id: uuid.UUID, event: AppointmentCancelled) -> None:
    """A hold's cancellation: remember it (a late completion is not billed) and void an open charge."""
    if event.reason != TREATMENT_HOLD:
        return
    await insert_new(
        tx.session,
        held_cancellations,
        None,
        appointment_id=event.appointment_id,
        patient_id=patient_id,
        reason=event.reason,
    )
    # Self-pay charges are invoiced at once: voiding one gives its share of the invoice back.
    params = {
        "cancelled_appointment": event.appointment_id,
        "cancel_reason": event.reason,
        "cancelled_at": datetime.now(UTC),
    }
    voided = (await tx.session.execute(_VOID, params)).one()
    bound = log.bind(patient_id=str(patient_id), appointment_id=str(event.appointment_id))
    if voided.charge_id is None:
        if voided.billed is not None and voided.billed != "voided":
            # Already on a claim: correcting that is a biller's decision (a void claim), not ours.
            bound.warning("charge.hold_cancel_after_billing", status=voided.billed)
        return
    if voided.invoice_id is not None:
        await invoicing.release(tx, voided.invoice_id, AppointmentType(voided.appointment_type))
    if voided.self_pay is None:
        bound.info("charge.voided_before_billing", charge_id=str(voided.charge_id))
        return  # never announced, so no void to announce either
    tx.emit(
        ChargeVoided(charge_id=voided.charge_id, appointment_id=event.appointment_id, reason=event.reason),
        patient_id=patient_id,
    )
    bound.info("charge.voided", charge_id=str(voided.charge_id), reason=event.reason)
