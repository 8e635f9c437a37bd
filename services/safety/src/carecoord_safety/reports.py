"""Recording a side-effect report and acting on the escalation decision.

One transaction: the report, the review it opens (or joins), the hold it
requests and the events announcing them all commit together, so a crash can
never leave a severe report without its review and hold.
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_shared.contracts.common import ReviewDecision
from carecoord_shared.contracts.patient_app import SideEffectReportSubmitted
from carecoord_shared.contracts.safety import (
    ClinicianReviewOpened,
    ClinicianReviewResolved,
    SideEffectReported,
    TreatmentHoldReleased,
    TreatmentHoldRequested,
)
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from .models import clinician_reviews, side_effect_reports, treatment_holds
from .rules import ReportFacts, RuleSet


@dataclass(frozen=True)
class ReportOutcome:
    report_id: uuid.UUID
    created: bool
    escalated: bool
    rule_version: str
    review_id: uuid.UUID | None
    hold_requested: bool


async def lock_patient(tx: Transaction, patient_id: uuid.UUID) -> None:
    """Serialise safety decisions per patient (reports arriving together see each other)."""
    await tx.session.execute(
        text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(patient_id.bytes) - 2**31}
    )


async def record_report(
    tx: Transaction,
    rules: RuleSet,
    *,
    patient_id: uuid.UUID,
    report: SideEffectReportSubmitted,
    source: str,
    now: datetime | None = None,
) -> ReportOutcome:
    now = now or datetime.now(UTC)
    await lock_patient(tx, patient_id)
    existing = (
        await tx.session.execute(select(side_effect_reports).where(side_effect_reports.c.report_id == report.report_id))
    ).first()
    if existing is not None:
        return await _outcome_of(tx, existing, created=False)

    decision = rules.evaluate(ReportFacts(grade=report.grade, symptoms=tuple(report.symptoms)))
    review_id: uuid.UUID | None = None
    hold_requested = False
    if decision is not None:
        review_id = (
            await tx.session.execute(
                select(clinician_reviews.c.review_id).where(
                    clinician_reviews.c.patient_id == patient_id,
                    clinician_reviews.c.reason == decision.reason,
                    clinician_reviews.c.status != "resolved",
                )
            )
        ).scalar()
        if review_id is None:
            review_id = uuid.uuid4()
            due_at = now + decision.due_within
            await tx.session.execute(
                insert(clinician_reviews).values(
                    review_id=review_id,
                    patient_id=patient_id,
                    reason=decision.reason,
                    priority=decision.priority.value,
                    due_at=due_at,
                    triggers=list(decision.triggers),
                    rule_version=decision.rule_version,
                    opened_at=now,
                )
            )
            tx.emit(
                ClinicianReviewOpened(
                    review_id=review_id,
                    reason=decision.reason,
                    priority=decision.priority,
                    due_at=due_at,
                    triggers=list(decision.triggers),
                    rule_version=decision.rule_version,
                ),
                patient_id=patient_id,
            )
            if decision.hold:
                hold_id = uuid.uuid4()
                await tx.session.execute(
                    insert(treatment_holds).values(
                        hold_id=hold_id, patient_id=patient_id, review_id=review_id, reason=decision.reason
                    )
                )
                tx.emit(
                    TreatmentHoldRequested(
                        hold_id=hold_id, review_id=review_id, reason=decision.reason, rule_version=decision.rule_version
                    ),
                    patient_id=patient_id,
                )
                hold_requested = True

    row = {
        "report_id": report.report_id,
        "patient_id": patient_id,
        "symptoms": list(report.symptoms),
        "grade": report.grade,
        "onset_minutes_after_dose": report.onset_minutes_after_dose,
        "note": report.note,
        "source": source,
        "received_at": now,
        "escalated": decision is not None,
        "rule_id": decision.rule_id if decision else None,
        "rule_version": rules.version,
        "review_id": review_id,
    }
    await tx.session.execute(pg_insert(side_effect_reports).values(**row))
    tx.emit(
        SideEffectReported(
            report_id=report.report_id,
            symptoms=list(report.symptoms),
            grade=report.grade,
            escalated=decision is not None,
            rule_version=rules.version,
        ),
        patient_id=patient_id,
    )
    return ReportOutcome(
        report_id=report.report_id,
        created=True,
        escalated=decision is not None,
        rule_version=rules.version,
        review_id=review_id,
        hold_requested=hold_requested,
    )


async def _outcome_of(tx: Transaction, row: Any, *, created: bool) -> ReportOutcome:
    held = False
    if row.review_id is not None:
        held = (
            await tx.session.execute(select(treatment_holds.c.hold_id).where(treatment_holds.c.review_id == row.review_id))
        ).first() is not None
    return ReportOutcome(
        report_id=row.report_id,
        created=created,
        escalated=row.escalated,
        rule_version=row.rule_version,
        review_id=row.review_id,
        hold_requested=held,
    )


async def resolve_review(
    tx: Transaction, review_id: uuid.UUID, *, decision: ReviewDecision, clinician_id: str
) -> uuid.UUID:
    """Resolve a review and release the holds it requested; returns the patient id."""
    review = (
        await tx.session.execute(
            select(clinician_reviews).where(clinician_reviews.c.review_id == review_id).with_for_update()
        )
    ).first()
    if review is None:
        raise NotFound(f"no clinician review {review_id}")
    if review.status == "resolved":
        raise RuleViolation(f"review {review_id} was already resolved ({review.decision})")
    await tx.session.execute(
        update(clinician_reviews)
        .where(clinician_reviews.c.review_id == review_id)
        .values(status="resolved", resolved_at=datetime.now(UTC), resolved_by=clinician_id, decision=decision.value)
    )
    tx.emit(ClinicianReviewResolved(review_id=review_id, decision=decision), patient_id=review.patient_id)
    holds = await tx.session.execute(
        update(treatment_holds)
        .where(treatment_holds.c.review_id == review_id, treatment_holds.c.status == "requested")
        .values(status="released", released_at=datetime.now(UTC))
        .returning(treatment_holds.c.hold_id)
    )
    for hold_id in holds.scalars():
        tx.emit(
            TreatmentHoldReleased(hold_id=hold_id, review_id=review_id, decision=decision),
            patient_id=review.patient_id,
        )
    return review.patient_id
