"""Assigning reviews to people: load who could take one (care team, rota, absences), let domain/assignment.py
decide, save and emit ClinicianReviewAssigned in the same transaction as the change that caused it.

The prescriber comes from the care team this service learns from scheduling's CareTeamChanged
(carecoord_shared.auth.care); the rota and the absences are this service's own (rota.py)."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select, true, update

from carecoord_contracts.common import AssignmentBasis, ReviewPriority
from carecoord_contracts.safety import ClinicianReviewAssigned
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from . import timers
from .domain import assignment as decide
from .domain.assignment import Assignment, Candidates, Current
from .models import care_relations, clinician_absences, clinician_reviews, jurisdictions, on_call_shifts

# The statements on the report path are built once, with these binds, and their values bound when they
# run: building one of their size and its cache key anew cost more CPU than running it (#22's profile:
# about a quarter of safety's samples were statement construction and cache keys).
PATIENT = bindparam("patient_id", type_=care_relations.c.patient_id.type)
NOW = bindparam("now", type_=on_call_shifts.c.starts_at.type)
REVIEW = bindparam("review_id", type_=clinician_reviews.c.review_id.type)


def _rota(role: str) -> Any:
    """Who holds ``role`` for the patient's state now (the latest shift to start, when two overlap)."""
    return (
        select(on_call_shifts.c.clinician_id)
        .join(jurisdictions, jurisdictions.c.state_of_residence == on_call_shifts.c.state)
        .where(
            jurisdictions.c.patient_id == PATIENT,
            on_call_shifts.c.role == role,
            on_call_shifts.c.cancelled_at.is_(None),
            on_call_shifts.c.starts_at <= NOW,
            on_call_shifts.c.ends_at > NOW,
        )
        .order_by(on_call_shifts.c.starts_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def away_until(clinician_id: ColumnElement[Any]) -> Any:
    """The end of the absence ``clinician_id`` is on at ``NOW`` (None: not away)."""
    return (
        select(func.max(clinician_absences.c.ends_at))
        .where(
            clinician_absences.c.clinician_id == clinician_id,
            clinician_absences.c.cancelled_at.is_(None),
            clinician_absences.c.starts_at <= NOW,
            clinician_absences.c.ends_at > NOW,
        )
        .scalar_subquery()
    )


@dataclass(frozen=True)
class Found:
    """Who could take a review of one patient now, and until when the prescriber is away (None: not away)."""

    now: Candidates
    prescriber_away_until: datetime | None

    def for_due(self, due_at: datetime) -> Candidates:
        """For a review due at ``due_at``: the prescriber counts as away when away past it."""
        away = self.prescriber_away_until is not None and self.prescriber_away_until >= due_at
        return dataclasses.replace(self.now, prescriber_away_until_due=away)


@functools.cache
def candidate_columns() -> Any:
    """``SELECT prescriber, away_until, on_call, clinical_lead``: who could take a review of the patient now,
    one row (for :func:`found`; reviews.unresolved adds it to its own statement), of ``PATIENT`` at ``NOW``."""
    prescriber = (
        select(care_relations.c.clinician_id)
        .where(care_relations.c.patient_id == PATIENT, care_relations.c.relation == "prescriber")
        .limit(1)
        .scalar_subquery()
    )
    return select(
        prescriber.label("prescriber"),
        away_until(prescriber).label("away_until"),
        _rota(decide.ON_CALL).label("on_call"),
        _rota(decide.CLINICAL_LEAD).label("clinical_lead"),
    )


def with_candidates(locked: Any) -> Any:
    """``locked`` (a CTE of locked review rows) outer-joined to :func:`candidate_columns`' one row: a row per
    review, or one whose review columns are NULL, so the reviews and who could take one are one statement."""
    who = candidate_columns().subquery("who")
    return select(who, locked).select_from(who.outerjoin(locked, true()))


def found(row: Any) -> Found:
    """A row with :func:`candidate_columns`' columns."""
    return Found(Candidates(row.prescriber, False, row.on_call, row.clinical_lead), row.away_until)


async def candidates(tx: Transaction, patient_id: uuid.UUID, now: datetime) -> Found:
    """Who could take a review of the patient now: one statement."""
    return found((await tx.session.execute(candidate_columns(), {"patient_id": patient_id, "now": now})).one())


def event(
    review_id: uuid.UUID, chosen: Assignment, priority: ReviewPriority, due_at: datetime
) -> ClinicianReviewAssigned:
    return ClinicianReviewAssigned(
        review_id=review_id,
        assignee_id=chosen.assignee_id,
        basis=chosen.basis,
        escalation_level=chosen.escalation_level,
        priority=priority,
        due_at=due_at,
    )


def columns(chosen: Assignment, now: datetime) -> dict[str, Any]:
    """The review's columns for an assignment (to insert with a new review, or update)."""
    return {
        "assignee_id": chosen.assignee_id,
        "assignment_basis": chosen.basis.value,
        "escalation_level": chosen.escalation_level,
        "assigned_at": now,
    }


async def _apply(tx: Transaction, review: Any, chosen: Assignment, now: datetime) -> None:
    await tx.session.execute(
        update(clinician_reviews)
        .where(clinician_reviews.c.review_id == review.review_id)
        .values(**columns(chosen, now))
    )
    tx.emit(
        event(review.review_id, chosen, ReviewPriority(review.priority), review.due_at), patient_id=review.patient_id
    )


def _current(review: Any) -> Current:
    basis = AssignmentBasis(review.assignment_basis) if review.assignment_basis else None
    return Current(review.assignee_id, basis, review.escalation_level)


async def _locked(tx: Transaction, review_id: uuid.UUID) -> Any:
    return (
        await tx.session.execute(
            select(clinician_reviews).where(clinician_reviews.c.review_id == review_id).with_for_update()
        )
    ).first()


@functools.cache
def _unbookable() -> Any:
    locked = (
        select(clinician_reviews)
        .where(clinician_reviews.c.review_id == REVIEW, clinician_reviews.c.patient_id == PATIENT)
        .with_for_update()
        .cte("locked")
    )
    return with_candidates(locked)


async def unbookable(tx: Transaction, review_id: uuid.UUID, patient_id: uuid.UUID, *, now: datetime) -> bool:
    """Scheduling found no visit before the review is due: on-call takes it (see domain/assignment.py).

    One statement: the review (this patient's only), locked in a CTE, outer-joined to who could take it."""
    params = {"review_id": review_id, "patient_id": patient_id, "now": now}
    review = (await tx.session.execute(_unbookable(), params)).one()
    if review.review_id is None or review.status == "resolved":
        return False
    chosen = decide.when_unbookable(found(review).for_due(review.due_at), _current(review))
    if chosen is None:
        return False
    await _apply(tx, review, chosen, now)
    return True


async def escalate(tx: Transaction, review_id: uuid.UUID, *, now: datetime, lead_after: timedelta) -> bool:
    """The review is overdue (or on-call did not acknowledge it): page the next rung, and arm the next step."""
    review = await _locked(tx, review_id)
    if review is None or review.status != "open":
        return False
    found = await candidates(tx, review.patient_id, now)
    chosen = decide.escalate(found.now, _current(review))
    if chosen is None:
        return False
    await _apply(tx, review, chosen, now)
    if chosen.escalation_level < 2:
        await timers.schedule(
            tx, timers.LEAD_ESCALATION, patient_id=review.patient_id, subject_id=review_id, due_at=now + lead_after
        )
    return True


async def reassign(tx: Transaction, review_id: uuid.UUID, assignee_id: str, *, now: datetime) -> Any:
    """By hand (a clinician or an operator): the review is the named clinician's; its escalation level stays."""
    review = await _locked(tx, review_id)
    if review is None:
        raise NotFound(f"no clinician review {review_id}")
    if review.status == "resolved":
        raise RuleViolation(f"clinician review {review_id} is resolved: there is nothing left to assign")
    if review.assignee_id == assignee_id:
        return review
    await _apply(tx, review, Assignment(assignee_id, AssignmentBasis.reassigned, review.escalation_level), now)
    return review
