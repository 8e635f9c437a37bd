"""The decisions about a clinician review, pure: what a further trigger changes on the unresolved review it
joins, which status allows an acknowledgement or a resolution, what an overdue review becomes, and the review
a refused dose change opens. reviews.py (the use cases) loads, saves and emits around them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from carecoord_contracts.common import ReviewDecision, ReviewPriority
from carecoord_shared.errors import RuleViolation

from ..rules import PRIORITY_RANK, ReviewRequest

DOSE_CHANGE_REFUSED = "dose_change_refused"
ESCALATION = {ReviewPriority.routine: ReviewPriority.high, ReviewPriority.high: ReviewPriority.urgent}


@dataclass(frozen=True)
class OpenReview:
    """The patient's unresolved review for a reason, as loaded (locked)."""

    review_id: uuid.UUID
    status: str
    priority_rank: int
    due_at: datetime
    triggers: tuple[str, ...]


@dataclass(frozen=True)
class Join:
    """What a further trigger changes on the review it joins: the columns to write, and the overdue timer's new
    due time when it comes forward (None: the timer stays)."""

    values: dict[str, object]
    due_at: datetime | None


def join(current: OpenReview, request: ReviewRequest, now: datetime) -> Join:
    """Triggers are added (each once); the priority may only rise; the due time may only come forward, and only
    while nobody has acknowledged the review."""
    values: dict[str, object] = {"triggers": list(dict.fromkeys([*current.triggers, *request.triggers]))}
    if PRIORITY_RANK[request.priority] > current.priority_rank:
        values |= {"priority": request.priority.value, "priority_rank": PRIORITY_RANK[request.priority]}
    due_at = now + request.due_within
    if due_at < current.due_at and current.status == "open":
        values["due_at"] = due_at
        return Join(values, due_at)
    return Join(values, None)


def check_acknowledge(review_id: uuid.UUID, status: str) -> None:
    if status != "open":
        raise RuleViolation(f"review {review_id} is {status}; only an open review can be acknowledged")


def check_dose_with_decision(decision: ReviewDecision, dose_mg: int | None) -> None:
    """A dose goes with resume_with_dose_change, and that decision always names one."""
    if (decision is ReviewDecision.resume_with_dose_change) != (dose_mg is not None):
        raise RuleViolation("resume_with_dose_change needs dose_mg, and only that decision takes one")


def check_resolve(review_id: uuid.UUID, status: str, previous_decision: str | None) -> None:
    if status == "resolved":
        raise RuleViolation(f"review {review_id} was already resolved ({previous_decision})")


def overdue_priority(priority: ReviewPriority) -> ReviewPriority:
    """An open review not acknowledged by its due time: one step up (urgent stays urgent)."""
    return ESCALATION.get(priority, ReviewPriority.urgent)


def dose_refusal_review(priority: ReviewPriority, opened_at: datetime, due_at: datetime, reason: str) -> ReviewRequest:
    """Dosing refused a resolution's dose change: a review with the resolved review's priority and urgency (the
    same time to its due time), the refusal's code as its trigger; it holds nothing new (the hold moves to it)."""
    return ReviewRequest(
        reason=DOSE_CHANGE_REFUSED,
        priority=priority,
        due_within=due_at - opened_at,
        hold=False,
        triggers=(reason,),
        rule_ids=(),
    )
