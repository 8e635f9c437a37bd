"""Scheduling rules: appointment types, who may hold them, and booking policy.

Durations are the product defaults of the domain reference; the rest are
product decisions, versioned so a booking can say which rules placed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from carecoord_contracts.common import AppointmentType, ReviewPriority


class Role(StrEnum):
    psychiatric_clinician = "psychiatric_clinician"
    therapist = "therapist"


@dataclass(frozen=True)
class AppointmentKind:
    duration: timedelta
    role: Role
    # Every kind falls inside the patient's local day, except a review appointment whose review's
    # priority may book any hour (BookingPolicy.any_hour_review_priorities).


APPOINTMENT_KINDS: dict[AppointmentType, AppointmentKind] = {
    AppointmentType.initial_evaluation: AppointmentKind(timedelta(minutes=60), Role.psychiatric_clinician),
    AppointmentType.preparation: AppointmentKind(timedelta(minutes=50), Role.therapist),
    # The at-home session is a 2-hour monitored window; a clinician monitors it.
    AppointmentType.dosing_session: AppointmentKind(timedelta(hours=2), Role.psychiatric_clinician),
    AppointmentType.integration: AppointmentKind(timedelta(minutes=50), Role.therapist),
    AppointmentType.follow_up: AppointmentKind(timedelta(minutes=30), Role.psychiatric_clinician),
    # Inside the patient's day unless the review it is booked for has a priority that may book any hour.
    AppointmentType.urgent_review: AppointmentKind(timedelta(minutes=30), Role.psychiatric_clinician),
}


@dataclass(frozen=True)
class BookingPolicy:
    # scheduling-2026-11-1: every review booked at any hour. 2026-12-1: only the priorities in
    # any_hour_review_priorities; the others inside the patient's day, with the routine lead.
    version: str = "scheduling-2026-12-1"
    # Candidate start times step from the start of each availability window.
    slot_step: timedelta = timedelta(minutes=30)
    # Routine appointments fall inside the patient's local day (minutes after local midnight).
    patient_day_start_minute: int = 8 * 60
    patient_day_end_minute: int = 21 * 60
    # Routine bookings made automatically leave the patient this much notice; urgent reviews none.
    routine_lead: timedelta = timedelta(hours=1)
    search_horizon: timedelta = timedelta(days=28)
    # Review appointments: only these priorities may be booked at any hour of the patient's day
    # (within the review's due time); the others fall inside the patient's day and leave the
    # routine lead. When no slot ends before the review is due, a non-urgent review takes the
    # next slot within the search horizon (it is still seen; the review's own overdue escalation runs).
    any_hour_review_priorities: frozenset[ReviewPriority] = frozenset({ReviewPriority.urgent})
    default_cadence_days: int = 7
    first_dosing_after_preparation: timedelta = timedelta(days=1)
    integration_after_dosing: timedelta = timedelta(hours=20)


POLICY = BookingPolicy()


def review_any_hour(priority: ReviewPriority | None) -> bool:
    """Whether a review of this priority may be booked outside the patient's day (an unknown priority may not)."""
    return priority is not None and priority in POLICY.any_hour_review_priorities


HOLD_REASON = "treatment_hold"
DISCONTINUED_REASON = "plan_discontinued"
# A superseding decision made the patient ineligible: their evaluation and dosing sessions are cancelled.
INELIGIBLE_REASON = "eligibility_withdrawn"
