"""Clinician reviews: open (or join) on a rule's request, acknowledge, resolve.

A review is a task with a status (open -> acknowledged -> resolved), a
priority, a due time, the facts that triggered it and the rule version. There
is at most one unresolved review per patient and reason: a further trigger
attaches to it (and may raise its priority, bring its due time forward, or add
the hold it did not have). Every change and its events commit together.

Each use case loads the review (locked), lets domain/reviews.py decide, then
saves and emits.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opentelemetry.metrics import Histogram
from sqlalchemy import Row, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_contracts.common import ReviewDecision, ReviewPriority
from carecoord_contracts.safety import (
    ClinicianReviewAcknowledged,
    ClinicianReviewOpened,
    ClinicianReviewOverdue,
    ClinicianReviewResolved,
    TreatmentHoldReleased,
    TreatmentHoldRequested,
)
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.preconditions import Precondition
from carecoord_shared.telemetry import meter

from . import assignment, plan_view, timers
from .domain import assignment as decide_assignment
from .domain import reviews as decide
from .domain.assignment import NOBODY
from .domain.plan_limits import DoseNotAllowed, dose_refusal
from .domain.reviews import DOSE_CHANGE_REFUSED, OpenReview
from .models import clinician_reviews, review_triggers, treatment_holds
from .rules import PRIORITY_RANK, ReviewRequest
from .writes import Writes

# What an acknowledgement or a resolution stops: the page to on-call at the due time, and to the lead after it.
ESCALATION_TIMERS = (timers.REVIEW_OVERDUE, timers.LEAD_ESCALATION)


@dataclass(frozen=True)
class ReviewOutcome:
    review_id: uuid.UUID
    opened: bool
    hold_requested: bool


@dataclass(frozen=True)
class Unresolved:
    """The patient's unresolved review for a reason, as loaded (locked), and whether it already has its hold."""

    review: OpenReview
    has_hold: bool


@functools.cache
def _unresolved() -> Any:
    """unresolved's statement, built once (assignment.PATIENT, NOW and the reasons bound when it runs)."""
    held = exists().where(treatment_holds.c.review_id == clinician_reviews.c.review_id)
    locked = (
        select(
            clinician_reviews.c.review_id,
            clinician_reviews.c.reason,
            clinician_reviews.c.status,
            clinician_reviews.c.priority_rank,
            clinician_reviews.c.due_at,
            clinician_reviews.c.triggers,
            held.label("has_hold"),
        )
        .where(
            clinician_reviews.c.patient_id == assignment.PATIENT,
            clinician_reviews.c.reason.in_(bindparam("reasons", expanding=True)),
            clinician_reviews.c.status != "resolved",
        )
        .with_for_update(of=clinician_reviews)
        .cte("locked")
    )
    return assignment.with_candidates(locked)


async def unresolved(
    tx: Transaction, patient_id: uuid.UUID, reasons: Iterable[str], now: datetime
) -> tuple[dict[str, Unresolved], assignment.Found | None]:
    """The patient's unresolved reviews for these reasons, locked, by reason, and who could take a review
    that opens (assignment.candidate_columns): one statement for all of it, none for no reasons.

    The caller holds the patient's lock, taken in an earlier statement, so this one's snapshot sees
    every hold and review committed under it before. The reviews are locked in a CTE
    (assignment.with_candidates)."""
    reasons = list(reasons)
    if not reasons:
        return {}, None
    params = {"patient_id": patient_id, "reasons": reasons, "now": now}
    rows = (await tx.session.execute(_unresolved(), params)).all()
    current = {
        r.reason: Unresolved(
            OpenReview(r.review_id, r.status, r.priority_rank, r.due_at, tuple(r.triggers)), bool(r.has_hold)
        )
        for r in rows
        if r.review_id is not None
    }
    return current, assignment.found(rows[0])


async def open_or_join(
    tx: Transaction,
    request: ReviewRequest,
    *,
    patient_id: uuid.UUID,
    rule_version: str,
    source_kind: str,
    source_id: uuid.UUID,
    now: datetime,
) -> ReviewOutcome:
    """The caller holds the patient's lock (see observations.lock_patient). Load, decide, save and emit for
    one request; observations stage several decisions in one save with :func:`unresolved` and :func:`stage`."""
    writes = Writes()
    loaded, found = await unresolved(tx, patient_id, [request.reason], now)
    current = loaded.get(request.reason)
    outcome = stage(
        tx,
        writes,
        request,
        current,
        patient_id=patient_id,
        rule_version=rule_version,
        source_kind=source_kind,
        source_id=source_id,
        now=now,
        candidates=found,
    )
    await writes.save(tx)
    return outcome


def stage(
    tx: Transaction,
    writes: Writes,
    request: ReviewRequest,
    current: Unresolved | None,
    *,
    patient_id: uuid.UUID,
    rule_version: str,
    source_kind: str,
    source_id: uuid.UUID,
    now: datetime,
    candidates: assignment.Found | None = None,
) -> ReviewOutcome:
    """Open a review for ``request`` or join ``current`` (the unresolved one for its reason, loaded
    locked): the writes staged in ``writes`` (the caller saves them), the events emitted. A review opened
    is assigned from ``candidates`` (loaded by :func:`unresolved`)."""
    due_at = now + request.due_within
    opened = current is None
    if current is None:
        review_id = uuid.uuid4()
        chosen = decide_assignment.at_open(candidates.for_due(due_at) if candidates is not None else NOBODY)
        writes.insert(
            clinician_reviews,
            review_id=review_id,
            patient_id=patient_id,
            reason=request.reason,
            priority=request.priority.value,
            priority_rank=PRIORITY_RANK[request.priority],
            due_at=due_at,
            triggers=list(request.triggers),
            rule_version=rule_version,
            opened_at=now,
            **assignment.columns(chosen, now),
        )
        tx.emit(
            ClinicianReviewOpened(
                review_id=review_id,
                reason=request.reason,
                priority=request.priority,
                due_at=due_at,
                triggers=list(request.triggers),
                rule_version=rule_version,
            ),
            patient_id=patient_id,
        )
        tx.emit(assignment.event(review_id, chosen, request.priority, due_at), patient_id=patient_id)
        # A review opened now has no timer yet: a plain insert, no upsert (timers.scheduling says why).
        timers.stage_first(writes, timers.REVIEW_OVERDUE, patient_id=patient_id, subject_id=review_id, due_at=due_at)
    else:
        review_id = current.review.review_id
        joined = decide.join(current.review, request, now)
        if joined.due_at is not None:
            writes.add(
                timers.scheduling(
                    timers.REVIEW_OVERDUE, patient_id=patient_id, subject_id=review_id, due_at=joined.due_at
                )
            )
        writes.add(update(clinician_reviews).where(clinician_reviews.c.review_id == review_id).values(**joined.values))

    writes.insert(
        review_triggers,
        review_id=review_id,
        source_kind=source_kind,
        source_id=source_id,
        rule_ids=list(request.rule_ids),
        triggers=list(request.triggers),
        rule_version=rule_version,
        at=now,
    )
    hold_requested = False
    # A review opened now has no hold yet; one joined has it when it was loaded with one.
    if request.hold and not (current is not None and current.has_hold):
        hold_id = uuid.uuid4()
        writes.insert(
            treatment_holds, hold_id=hold_id, patient_id=patient_id, review_id=review_id, reason=request.reason
        )
        tx.emit(
            TreatmentHoldRequested(
                hold_id=hold_id, review_id=review_id, reason=request.reason, rule_version=rule_version
            ),
            patient_id=patient_id,
        )
        hold_requested = True
    return ReviewOutcome(review_id=review_id, opened=opened, hold_requested=hold_requested)


async def _for_update(tx: Transaction, review_id: uuid.UUID, precondition: Precondition | None = None) -> Row[Any]:
    """The review, locked; ``precondition``: a clinician's If-Match, checked against the locked row's version."""
    review = (
        await tx.session.execute(
            select(clinician_reviews).where(clinician_reviews.c.review_id == review_id).with_for_update()
        )
    ).first()
    if review is None:
        raise NotFound(f"no clinician review {review_id}")
    if precondition is not None:
        precondition.check(review.version, "review")
    return review


async def acknowledge(
    tx: Transaction,
    review_id: uuid.UUID,
    *,
    clinician_id: str,
    now: datetime,
    precondition: Precondition | None = None,
) -> None:
    review = await _for_update(tx, review_id, precondition)
    decide.check_acknowledge(review_id, review.status)
    await tx.session.execute(
        update(clinician_reviews)
        .where(clinician_reviews.c.review_id == review_id)
        .values(status="acknowledged", acknowledged_at=now, acknowledged_by=clinician_id)
    )
    await timers.cancel_all(tx, ESCALATION_TIMERS, subject_id=review_id, now=now)
    tx.emit(
        ClinicianReviewAcknowledged(review_id=review_id, acknowledged_by=clinician_id), patient_id=review.patient_id
    )
    _time_to_acknowledge().record(
        (now - review.opened_at).total_seconds(), {"priority": review.priority, "reason": review.reason}
    )


async def resolve(
    tx: Transaction,
    review_id: uuid.UUID,
    *,
    decision: ReviewDecision,
    clinician_id: str,
    note: str | None,
    now: datetime,
    dose_mg: int | None = None,
    precondition: Precondition | None = None,
) -> None:
    """Resolve with the clinician's decision and release the holds the review requested.

    Resume with a dose change names the new dose: it must be within the plan's limits as safety
    last heard them from dosing (plan_view; else DoseNotAllowed, nothing recorded), and it travels
    with the release so dosing approves it in the clinician's name in the same step."""
    decide.check_dose_with_decision(decision, dose_mg)
    review = await _for_update(tx, review_id, precondition)
    decide.check_resolve(review_id, review.status, review.decision)
    if dose_mg is not None:
        if not await _has_requested_hold(tx, review_id):
            raise DoseNotAllowed(
                "review_holds_no_treatment",
                "this review holds no treatment, so there is no paused plan to resume with a new dose: "
                "resolve it with resume and approve the dose in dosing",
            )
        if (refusal := dose_refusal(await plan_view.of_patient(tx, review.patient_id), dose_mg)) is not None:
            raise refusal
    await tx.session.execute(
        update(clinician_reviews)
        .where(clinician_reviews.c.review_id == review_id)
        .values(
            status="resolved", resolved_at=now, resolved_by=clinician_id, decision=decision.value, resolution_note=note
        )
    )
    await timers.cancel_all(tx, ESCALATION_TIMERS, subject_id=review_id, now=now)
    tx.emit(
        ClinicianReviewResolved(review_id=review_id, decision=decision, resolved_by=clinician_id, dose_mg=dose_mg),
        patient_id=review.patient_id,
    )
    released = await tx.session.execute(
        update(treatment_holds)
        .where(treatment_holds.c.review_id == review_id, treatment_holds.c.status == "requested")
        .values(status="released", released_at=now)
        .returning(treatment_holds.c.hold_id)
    )
    for hold_id in released.scalars():
        tx.emit(
            TreatmentHoldReleased(
                hold_id=hold_id, review_id=review_id, decision=decision, dose_mg=dose_mg, decided_by=clinician_id
            ),
            patient_id=review.patient_id,
        )


async def _has_requested_hold(tx: Transaction, review_id: uuid.UUID) -> bool:
    found = await tx.session.execute(
        select(treatment_holds.c.hold_id).where(
            treatment_holds.c.review_id == review_id, treatment_holds.c.status == "requested"
        )
    )
    return found.first() is not None


async def dose_change_refused(
    tx: Transaction, *, patient_id: uuid.UUID, hold_id: uuid.UUID, review_id: uuid.UUID, reason: str, now: datetime
) -> uuid.UUID:
    """Dosing refused a resolution's dose change and kept the plan paused: the clinician must decide again.

    A review (reason dose_change_refused, the refusal's code as its trigger) opens with the resolved
    review's priority, urgency (the same time to its due time) and rule version, and the hold, still
    open in dosing, moves to it: resolving it releases the hold again."""
    await tx.lock_patient(patient_id)
    original = (
        await tx.session.execute(select(clinician_reviews).where(clinician_reviews.c.review_id == review_id))
    ).first()
    if original is None or original.patient_id != patient_id:
        raise NotFound(f"no clinician review {review_id} of this patient")
    request = decide.dose_refusal_review(ReviewPriority(original.priority), original.opened_at, original.due_at, reason)
    outcome = await open_or_join(
        tx,
        request,
        patient_id=patient_id,
        rule_version=original.rule_version,
        source_kind="dose_refusal",
        source_id=hold_id,
        now=now,
    )
    moved = await tx.session.execute(
        update(treatment_holds)
        .where(
            treatment_holds.c.hold_id == hold_id, treatment_holds.c.patient_id == patient_id
        )  # never another patient's hold
        .values(review_id=outcome.review_id, status="requested", released_at=None)
        .returning(treatment_holds.c.hold_id)
    )
    if moved.first() is None:
        await tx.session.execute(
            pg_insert(treatment_holds)
            .values(hold_id=hold_id, patient_id=patient_id, review_id=outcome.review_id, reason=DOSE_CHANGE_REFUSED)
            .on_conflict_do_nothing(index_elements=[treatment_holds.c.hold_id])
        )
    return outcome.review_id


@functools.cache
def _time_to_acknowledge() -> Histogram:
    return meter().create_histogram(
        "carecoord.review.time_to_acknowledge",
        unit="s",
        description="From a review opening to a clinician acknowledging it",
    )


async def mark_overdue(tx: Transaction, review_id: uuid.UUID, *, now: datetime) -> bool:
    """Not acknowledged by its due time: raise the priority one step and say so."""
    review = await _for_update(tx, review_id)
    if review.status != "open":
        return False
    raised = decide.overdue_priority(ReviewPriority(review.priority))
    await tx.session.execute(
        update(clinician_reviews)
        .where(clinician_reviews.c.review_id == review_id)
        .values(priority=raised.value, priority_rank=PRIORITY_RANK[raised], overdue_at=now)
    )
    tx.emit(
        ClinicianReviewOverdue(review_id=review_id, priority=raised, due_at=review.due_at), patient_id=review.patient_id
    )
    return True
