"""Posting an 835: payments, adjustments, denials (to the work queue) and reversals.

A whole file posts in one transaction, or not at all (it is then rejected):
a file naming a claim we never sent is not half-posted. Each CLP loop is
remembered by (file hash, position), so reading a file again changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Row, select, update
from sqlalchemy.dialects.postgresql import insert

from carecoord_contracts.billing import Adjustment, ClaimDenied, RemittancePosted
from carecoord_shared.messaging.unit_of_work import Transaction

from . import domain
from .models import claims, denials, remittances
from .x12.remittance_835 import ClaimPayment
from .x12.syntax import X12Error

log = structlog.get_logger("carecoord.billing.remittance")


async def post(tx: Transaction, payments: list[ClaimPayment], *, file_sha256: str, now: datetime | None = None) -> int:
    """Post every claim payment of one 835; returns how many were new."""
    now = now or datetime.now(UTC)
    posted = 0
    for position, payment in enumerate(payments):
        claim = (
            await tx.session.execute(
                select(claims).where(claims.c.claim_number == payment.claim_number).with_for_update()
            )
        ).first()
        if claim is None:
            raise X12Error(f"CLP01 {payment.claim_number} is not a claim we sent")
        new = await tx.session.scalar(
            insert(remittances)
            .values(
                remittance_id=uuid.uuid4(),
                claim_id=claim.claim_id,
                source_file_sha256=file_sha256,
                position=position,
                status_code=payment.status_code,
                charge_cents=payment.charge_cents,
                paid_cents=payment.paid_cents,
                patient_responsibility_cents=payment.patient_responsibility_cents,
                adjustments=[
                    {"group": a.group, "reason_code": a.reason_code, "cents": a.cents} for a in payment.adjustments
                ],
                payer_claim_number=payment.payer_claim_number or None,
            )
            .on_conflict_do_nothing(constraint="uq_remittances_file_position")
            .returning(remittances.c.remittance_id)
        )
        if new is None:
            continue
        posted += 1
        if payment.denied:
            await _deny(tx, claim, payment, now)
        else:
            await _pay(tx, claim, payment, now)
    return posted


async def _pay(tx: Transaction, claim: Row[Any], payment: ClaimPayment, now: datetime) -> None:
    paid = claim.paid_cents + payment.paid_cents
    status = domain.adjudicated_status(payment)
    await tx.session.execute(
        update(claims)
        .where(claims.c.claim_id == claim.claim_id)
        .values(
            status=status,
            paid_cents=paid,
            patient_responsibility_cents=claim.patient_responsibility_cents + payment.patient_responsibility_cents,
            adjudicated_at=now,
        )
    )
    tx.emit(
        RemittancePosted(
            claim_id=claim.claim_id,
            paid_cents=payment.paid_cents,
            patient_responsibility_cents=payment.patient_responsibility_cents,
            adjustments=[
                Adjustment(group=a.group, reason_code=a.reason_code, amount_cents=a.cents) for a in payment.adjustments
            ],
            reversal=payment.reversal,
        ),
        patient_id=claim.patient_id,
    )
    log.info("remittance.posted", claim_id=str(claim.claim_id), status=status, paid_cents=payment.paid_cents)


async def _deny(tx: Transaction, claim: Row[Any], payment: ClaimPayment, now: datetime) -> None:
    group, reason = domain.denial_reason(payment)
    await tx.session.execute(
        update(claims).where(claims.c.claim_id == claim.claim_id).values(status="denied", adjudicated_at=now)
    )
    await tx.session.execute(
        insert(denials)
        .values(
            denial_id=uuid.uuid4(),
            claim_id=claim.claim_id,
            patient_id=claim.patient_id,
            group_code=group,
            reason_code=reason,
            amount_cents=payment.charge_cents,
            denied_at=now,
        )
        .on_conflict_do_nothing(index_elements=[denials.c.claim_id])
    )
    tx.emit(ClaimDenied(claim_id=claim.claim_id, reason_code=reason), patient_id=claim.patient_id)
    log.info("remittance.denied", claim_id=str(claim.claim_id), group=group, reason_code=reason)
