"""What the care pathway's events call for, pure: eligibility decisions, the dosing course's times,
rebooking after a hold, and where to look for a review visit. The use cases are in courses.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from carecoord_contracts.common import AppointmentType, EligibilityOutcome, ReviewPriority

from .policy import BookingPolicy, review_any_hour

# --- eligibility -------------------------------------------------------------------


@dataclass(frozen=True)
class EligibilityChange:
    """What applying one eligibility decision writes and books or cancels."""

    applied: dict[str, str | int | None]
    book_evaluation: bool
    cancel_kinds: tuple[AppointmentType, ...]


def eligibility_change(
    stored_sequence: int | None, outcome: EligibilityOutcome, sequence: int | None
) -> EligibilityChange | None:
    """Apply intake's latest decision about the patient; None for one it supersedes that arrives later.

    eligible: the initial evaluation is booked (once), and a course waiting for the patient books.
    ineligible (also superseding an eligible decision): the upcoming initial evaluation and dosing
    sessions are cancelled (never billed) and no course books; therapy and clinician visits stay
    (the clinician decides the plan). needs_review: nothing new books, nothing is cancelled.
    """
    if stored_sequence is not None and sequence is not None and sequence <= stored_sequence:
        return None
    applied: dict[str, str | int | None] = {"eligibility_outcome": outcome.value}
    if sequence is not None:  # a producer that numbers no decision leaves the last number in place
        applied["eligibility_sequence"] = sequence
    return EligibilityChange(
        applied=applied,
        book_evaluation=outcome is EligibilityOutcome.eligible,
        cancel_kinds=(
            (AppointmentType.initial_evaluation, AppointmentType.dosing_session)
            if outcome is EligibilityOutcome.ineligible
            else ()
        ),
    )


def is_ineligible(outcome: str | None) -> bool:
    return outcome == EligibilityOutcome.ineligible.value


# --- the dosing course --------------------------------------------------------------


def plan_cadence_days(policy: BookingPolicy, cadence_days: int | None) -> int:
    """A plan that names no cadence doses weekly (the policy's default)."""
    return cadence_days or policy.default_cadence_days


def course_start(policy: BookingPolicy, now: datetime) -> datetime:
    """Routine bookings made automatically leave the patient the routine lead."""
    return now + policy.routine_lead


def first_dosing_at(policy: BookingPolicy, start: datetime, preparation_ends_at: datetime | None) -> datetime:
    """The first dosing session looks from a day after the preparation (after the start when it found no slot)."""
    return (preparation_ends_at or start) + policy.first_dosing_after_preparation


def dosing_at(first_dosing: datetime, number: int, cadence_days: int) -> datetime:
    """Session ``number`` (1-based) looks from its place on the plan's cadence."""
    return first_dosing + (number - 1) * timedelta(days=cadence_days)


def integration_at(policy: BookingPolicy, dosing_ends_at: datetime) -> datetime:
    return dosing_ends_at + policy.integration_after_dosing


def rebook_from(held_starts_at: datetime, earliest: datetime) -> datetime:
    """A held session is rebooked at its old time when that is still ahead, never before the one rebooked before it."""
    return max(held_starts_at, earliest)


# --- review visits ------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """One search for a review visit: the earliest slot in [not_before, not_after)."""

    not_before: datetime
    not_after: datetime
    any_hour: bool
    # Found only by this search, the visit is after the review is due (logged).
    after_due: bool = False


def review_searches(policy: BookingPolicy, priority: ReviewPriority, now: datetime, due_at: datetime) -> list[Search]:
    """Where to look for a review visit, in order (the first that finds a slot books it).

    An urgent review (a priority in policy.any_hour_review_priorities) takes the earliest slot at any
    hour that ends before the review is due. Any other review falls inside the patient's day and
    leaves the routine lead: the earliest such slot before it is due, else the next one within the
    search horizon (the patient is still seen; safety's overdue escalation covers the due time).
    """
    if review_any_hour(priority):
        return [Search(now, due_at, any_hour=True)]
    start = now + policy.routine_lead
    return [
        Search(start, due_at, any_hour=False),
        Search(start, start + policy.search_horizon, any_hour=False, after_due=True),
    ]


def review_unavailable_reason(patient_known: bool, priority: ReviewPriority) -> str:
    """Why no review visit could be booked (ReviewAppointmentUnavailable.reason)."""
    if not patient_known:
        return "patient_location_unknown"
    if review_any_hour(priority):
        return "no_licensed_clinician_free"
    return "no_licensed_clinician_free_in_patient_day"
