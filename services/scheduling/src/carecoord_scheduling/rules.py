"""Scheduling rules: appointment types, who may hold them, and booking policy.

Durations are the product defaults of the domain reference; the rest are
product decisions, versioned so a booking can say which rules placed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from carecoord_shared.contracts.common import AppointmentType


class Role(StrEnum):
    psychiatric_clinician = "psychiatric_clinician"
    therapist = "therapist"


@dataclass(frozen=True)
class AppointmentKind:
    duration: timedelta
    role: Role
    # Urgent safety reviews are booked at any hour: waiting for the patient's morning could breach the review's due time.
    within_patient_day: bool = True


APPOINTMENT_KINDS: dict[AppointmentType, AppointmentKind] = {
    AppointmentType.initial_evaluation: AppointmentKind(timedelta(minutes=60), Role.psychiatric_clinician),
    AppointmentType.preparation: AppointmentKind(timedelta(minutes=50), Role.therapist),
    # The at-home session is a 2-hour monitored window; a clinician monitors it.
    AppointmentType.dosing_session: AppointmentKind(timedelta(hours=2), Role.psychiatric_clinician),
    AppointmentType.integration: AppointmentKind(timedelta(minutes=50), Role.therapist),
    AppointmentType.follow_up: AppointmentKind(timedelta(minutes=30), Role.psychiatric_clinician),
    AppointmentType.urgent_review: AppointmentKind(
        timedelta(minutes=30), Role.psychiatric_clinician, within_patient_day=False
    ),
}


@dataclass(frozen=True)
class BookingPolicy:
    version: str = "scheduling-2026-11-1"
    # Candidate start times step from the start of each availability window.
    slot_step: timedelta = timedelta(minutes=30)
    # Routine appointments fall inside the patient's local day (minutes after local midnight).
    patient_day_start_minute: int = 8 * 60
    patient_day_end_minute: int = 21 * 60
    # Routine bookings made automatically leave the patient this much notice; urgent reviews none.
    routine_lead: timedelta = timedelta(hours=1)
    search_horizon: timedelta = timedelta(days=28)
    default_cadence_days: int = 7
    first_dosing_after_preparation: timedelta = timedelta(days=1)
    integration_after_dosing: timedelta = timedelta(hours=20)


POLICY = BookingPolicy()

HOLD_REASON = "treatment_hold"
DISCONTINUED_REASON = "plan_discontinued"
