"""Booking decisions, pure: which slots are open, whether a requested time may be booked, and
which changes an appointment's status allows. The use cases load what these read (booking.py).

Overlap with the clinician's other appointments is not decided here when a time is booked: the
database is the only place that can decide it under concurrent requests (the exclusion constraints
on appointments); the checks here give a readable reason for everything else.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from carecoord_contracts.common import AppointmentType, ReviewPriority
from carecoord_shared.errors import NotFound, RuleViolation

from .availability import Interval, WeeklyWindow, candidate_starts, overlaps, windows_between, within_local_day
from .policy import APPOINTMENT_KINDS, AppointmentKind, BookingPolicy, review_any_hour


@dataclass(frozen=True)
class Patient:
    patient_id: uuid.UUID
    state: str
    tz: ZoneInfo


@dataclass
class ClinicianSchedule:
    clinician_id: str
    role: str
    tz: ZoneInfo
    licensed_states: list[str]
    windows: list[WeeklyWindow] = field(default_factory=list)
    time_off: list[Interval] = field(default_factory=list)
    booked: list[Interval] = field(default_factory=list)
    active: bool = True


@dataclass(frozen=True)
class Slot:
    clinician_id: str
    starts_at: datetime
    ends_at: datetime


def wall(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def in_patient_day(policy: BookingPolicy, patient: Patient, start: datetime, end: datetime) -> bool:
    return within_local_day(start, end, patient.tz, policy.patient_day_start_minute, policy.patient_day_end_minute)


def slots_of(
    policy: BookingPolicy,
    c: ClinicianSchedule,
    kind: AppointmentKind,
    patient: Patient,
    patient_taken: list[Interval],
    period: Interval,
    *,
    any_hour: bool = False,
) -> Iterator[Slot]:
    """One clinician's free slots in the period, earliest first."""
    available = windows_between(c.windows, c.tz, *period)
    for start in candidate_starts(
        available,
        c.time_off + c.booked + patient_taken,
        duration=kind.duration,
        step=policy.slot_step,
        not_before=period[0],
        not_after=period[1],
    ):
        end = start + kind.duration
        if not any_hour and not in_patient_day(policy, patient, start, end):
            continue
        yield Slot(c.clinician_id, start, end)


def earliest_slots(
    policy: BookingPolicy,
    schedules: Iterable[ClinicianSchedule],
    appointment_type: AppointmentType,
    patient: Patient,
    patient_taken: list[Interval],
    period: Interval,
    *,
    limit: int,
    any_hour: bool = False,
) -> list[Slot]:
    """The earliest free slots across the clinicians (ties by clinician id), at most ``limit``.

    ``any_hour`` lifts the patient's-day rule (an urgent review); the clinician's availability always holds."""
    kind = APPOINTMENT_KINDS[appointment_type]
    streams = [slots_of(policy, c, kind, patient, patient_taken, period, any_hour=any_hour) for c in schedules]
    merged = heapq.merge(*streams, key=lambda s: (s.starts_at, s.clinician_id))
    return [slot for _, slot in zip(range(limit), merged, strict=False)]


def check_bookable(
    policy: BookingPolicy,
    *,
    now: datetime,
    patient: Patient,
    appointment_type: AppointmentType,
    clinician_id: str,
    clinician: ClinicianSchedule | None,
    patient_taken: list[Interval],
    starts_at: datetime,
    any_hour: bool = False,
) -> datetime:
    """Refuse, with a readable reason, a time the clinician does not offer; returns the end time.

    ``clinician`` is the clinician's schedule around the requested time (None: no such clinician);
    ``patient_taken`` the patient's other live appointments in it.
    """
    kind = APPOINTMENT_KINDS[appointment_type]
    ends_at = starts_at + kind.duration
    if starts_at < now:
        raise RuleViolation("an appointment cannot start in the past")
    if clinician is None:
        raise NotFound(f"no clinician {clinician_id}")
    if not clinician.active:
        raise RuleViolation(f"clinician {clinician_id} is not taking appointments")
    if clinician.role != kind.role:
        raise RuleViolation(
            f"a {appointment_type.value} is held by a {kind.role.value}, and {clinician_id} is a {clinician.role}"
        )
    if patient.state not in clinician.licensed_states:
        raise RuleViolation(f"clinician {clinician_id} is not licensed in the patient's state ({patient.state})")
    available = [
        (max(s, starts_at), e) for s, e in windows_between(clinician.windows, clinician.tz, starts_at, ends_at)
    ]
    if available != [(starts_at, ends_at)]:
        raise RuleViolation(
            f"clinician {clinician_id} is not available for the whole of {starts_at.isoformat()} to {ends_at.isoformat()}"
        )
    if any(overlaps(b, (starts_at, ends_at)) for b in clinician.time_off):
        raise RuleViolation(f"clinician {clinician_id} is away during {starts_at.isoformat()} to {ends_at.isoformat()}")
    if not any_hour and not in_patient_day(policy, patient, starts_at, ends_at):
        raise RuleViolation(
            f"the appointment falls outside the patient's local day ({wall(policy.patient_day_start_minute)} to "
            f"{wall(policy.patient_day_end_minute)} in their time zone)"
        )
    if any(overlaps(b, (starts_at, ends_at)) for b in patient_taken):
        raise RuleViolation("the patient already has an appointment at that time")
    return ends_at


def review_may_book_any_hour(appointment_type: str, review_priority: str | None) -> bool:
    """For an existing appointment (a reschedule): only a review booked for a priority that may book any hour."""
    if appointment_type != AppointmentType.urgent_review.value or review_priority is None:
        return False
    return review_any_hour(ReviewPriority(review_priority))


def require_booked(status: str, appointment_id: uuid.UUID, action: str) -> None:
    if status != "booked":
        raise RuleViolation(f"appointment {appointment_id} is {status}; only a booked appointment can be {action}")


def require_settleable(
    status: str, appointment_id: uuid.UUID, starts_at: datetime, now: datetime, outcome: str
) -> None:
    """How a booked appointment went is recorded only once it has started."""
    require_booked(status, appointment_id, f"marked {outcome}")
    if starts_at > now:
        raise RuleViolation(f"an appointment that has not started cannot be marked {outcome}")
