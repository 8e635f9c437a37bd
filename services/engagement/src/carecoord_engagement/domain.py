"""The decisions about tasks (pure): which kinds there are, who gets one, when it falls due, how each may end.

No I/O here: tasks.py applies these inside the event's or the request's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from carecoord_shared.errors import RuleViolation


class Kind(StrEnum):
    call_patient = "call_patient"  # a dosing session's check-in is missing: someone calls the patient
    escalated_review = "escalated_review"  # a review escalated to the on-call clinician or the clinical lead
    arrange_review = "arrange_review"  # no clinician could take a review visit in time: operators arrange one
    denied_claim = "denied_claim"  # a payer denied a claim: the billing office works it
    notification_failed = "notification_failed"  # a page or a patient's message could not be delivered


class OwnerRole(StrEnum):
    """Whose queue a task is in when nobody has it (and whose it stays when somebody does)."""

    clinician = "clinician"
    operator = "operator"
    # The billing office: billing staff call as a service (the identity provider gives them no clinician licence).
    billing = "billing"


# How a person may close a task of each kind (the request's ``outcome``): every task ends with one of these.
OUTCOMES: dict[Kind, frozenset[str]] = {
    Kind.call_patient: frozenset(
        {"reached_patient", "left_message", "no_answer_escalated", "emergency_services_called"}
    ),
    Kind.escalated_review: frozenset({"review_acknowledged", "review_resolved", "handed_over"}),
    Kind.arrange_review: frozenset({"review_booked", "review_resolved", "patient_declined"}),
    Kind.denied_claim: frozenset({"claim_resubmitted", "claim_written_off", "patient_invoiced"}),
    Kind.notification_failed: frozenset({"reached_otherwise", "contact_details_corrected", "no_longer_needed"}),
}
# Outcomes only the service itself records, from safety's events.
REVIEW_ACKNOWLEDGED = "review_acknowledged"
REVIEW_RESOLVED = "review_resolved"
# An escalated review's task for the previous assignee, once the review was handed on (escalated again, reassigned).
SUPERSEDED = "superseded"
SYSTEM = "engagement"  # closed_by when the service closed the task itself

# Which open tasks of a review an event closes.
CLOSED_BY_ACKNOWLEDGEMENT = frozenset({Kind.escalated_review})
CLOSED_BY_RESOLUTION = frozenset({Kind.escalated_review, Kind.arrange_review})


@dataclass(frozen=True)
class Owner:
    owner_id: str | None
    role: OwnerRole


def call_owner(prescriber_id: str | None) -> Owner:
    """A missed check-in is the prescriber's to chase; before scheduling has named one, the clinicians' queue's."""
    return Owner(prescriber_id, OwnerRole.clinician)


def escalation_owner(assignee_id: str | None) -> Owner:
    """Whom an escalation names; an escalation that found nobody goes to operators, to find someone."""
    return Owner(assignee_id, OwnerRole.clinician) if assignee_id else Owner(None, OwnerRole.operator)


def pages_for(escalation_level: int, assignee_id: str | None) -> bool:
    """Level 0 (the prescriber's own review) is on their worklist; an escalation wakes someone up."""
    return escalation_level >= 1 and assignee_id is not None


def due_after(occurred_at: datetime, within: timedelta, not_before: datetime | None = None) -> datetime:
    due = occurred_at + within
    return max(due, not_before) if not_before is not None else due


class InvalidOutcome(ValueError):
    """The outcome is not one a task of this kind closes with (the route answers 422 naming the field)."""


def check_close(kind: Kind, state: str, outcome: str) -> None:
    """A person may close an open task, with an outcome of its kind: else RuleViolation (409) or InvalidOutcome."""
    if state != "open":
        raise RuleViolation("the task is closed already: it keeps the outcome it was closed with")
    if outcome not in OUTCOMES[kind]:
        raise InvalidOutcome(f"a {kind.value} task closes with one of: {', '.join(sorted(OUTCOMES[kind]))}")
