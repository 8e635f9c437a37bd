"""Coverage: what intake says each patient declared, and whether a payer is billed.

Insurance is billed to the payer only in the states configured as accepting
it; elsewhere the patient pays themselves. A payer's 271 saying the coverage
is inactive also turns the patient to self-pay. Until a declaration arrives,
charges wait for it (see charges.py).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import insert, select

from carecoord_contracts.intake import CoverageDeclared, PatientRegistered
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.statements import upsert

from . import domain
from .models import coverages, eligibility_checks, patients

log = structlog.get_logger("carecoord.billing.coverage")


async def record_patient(tx: Transaction, *, patient_id: uuid.UUID, event: PatientRegistered) -> None:
    values = {"state_of_residence": event.state_of_residence, "time_zone": event.time_zone}
    await upsert(
        tx.session,
        patients,
        "patient_id",
        {"patient_id": patient_id, **values},
        on_update={"updated_at": datetime.now(UTC)},
    )


async def declare(
    tx: Transaction, insurance_states: frozenset[str], *, patient_id: uuid.UUID, event: CoverageDeclared
) -> uuid.UUID | None:
    """Record the declaration; returns the eligibility check queued for it, if any."""
    billable = domain.billable_to_payer(event.kind, event.payer_id, event.state_of_residence, insurance_states)
    values = {
        "coverage_id": event.coverage_id,
        "kind": event.kind.value,
        "payer_id": event.payer_id,
        "state_of_residence": event.state_of_residence,
        "billable_to_payer": billable,
        "verification_status": "unverified",
        "declared_at": tx.cause.occurred_at if tx.cause else datetime.now(UTC),
        "verified_at": None,
    }
    await upsert(tx.session, coverages, "patient_id", {"patient_id": patient_id, **values})
    log.info("coverage.declared", patient_id=str(patient_id), kind=event.kind.value, billable_to_payer=billable)
    if not billable:
        return None
    assert event.payer_id is not None
    verification_id = uuid.uuid4()
    await tx.session.execute(
        insert(eligibility_checks).values(
            verification_id=verification_id,
            trace_number=verification_id.hex.upper(),
            patient_id=patient_id,
            coverage_id=event.coverage_id,
            payer_id=event.payer_id,
        )
    )
    return verification_id


async def billed_party(tx: Transaction, patient_id: uuid.UUID) -> domain.BilledParty:
    """Whether coverage is known, and the payer to bill (None for self-pay)."""
    row = (
        await tx.session.execute(
            select(coverages.c.payer_id, coverages.c.billable_to_payer, coverages.c.verification_status).where(
                coverages.c.patient_id == patient_id
            )
        )
    ).first()
    if row is None:
        return domain.UNKNOWN_PARTY
    return domain.billed_party(row.payer_id, row.billable_to_payer, row.verification_status)
