"""Scheduling's decisions without a database (carecoord_scheduling.domain): whether a time may be
booked and why not, which slots are offered first, an appointment's status changes, eligibility
decisions in sequence, the course's times, and where a review visit is looked for."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carecoord_contracts.common import AppointmentType, EligibilityOutcome, ReviewPriority
from carecoord_scheduling.domain import booking, courses
from carecoord_scheduling.domain.availability import WeeklyWindow
from carecoord_scheduling.domain.booking import ClinicianSchedule, Patient
from carecoord_scheduling.domain.policy import POLICY, BookingPolicy, Role
from carecoord_shared.errors import NotFound, RuleViolation

UTC_ZONE = ZoneInfo("UTC")
# A Monday, 00:00 UTC; every zone here is UTC so wall times read as UTC.
MONDAY = datetime(2027, 1, 4, tzinfo=UTC)
NOW = MONDAY - timedelta(days=1)
PATIENT = Patient(uuid.uuid4(), "TX", UTC_ZONE)


def at(hour: int, minute: int = 0, day: int = 0) -> datetime:
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute)


def clinician(
    clinician_id: str = "dr-a",
    role: Role = Role.psychiatric_clinician,
    states: tuple[str, ...] = ("TX",),
    start_minute: int = 0,
    end_minute: int = 24 * 60,
    *,
    active: bool = True,
    booked: list[tuple[datetime, datetime]] | None = None,
    time_off: list[tuple[datetime, datetime]] | None = None,
) -> ClinicianSchedule:
    windows = [WeeklyWindow(d, start_minute, end_minute) for d in range(7)]
    return ClinicianSchedule(
        clinician_id, role.value, UTC_ZONE, list(states), windows, time_off or [], booked or [], active
    )


def check(
    starts_at: datetime,
    c: ClinicianSchedule | None,
    kind: AppointmentType = AppointmentType.follow_up,
    taken: list[tuple[datetime, datetime]] | None = None,
    any_hour: bool = False,
) -> datetime:
    return booking.check_bookable(
        POLICY,
        now=NOW,
        patient=PATIENT,
        appointment_type=kind,
        clinician_id="dr-a",
        clinician=c,
        patient_taken=taken or [],
        starts_at=starts_at,
        any_hour=any_hour,
    )


# --- may this time be booked ---------------------------------------------------------


def test_a_bookable_time_returns_its_end_by_the_kind_of_appointment() -> None:
    assert check(at(10), clinician()) == at(10, 30)
    assert check(at(10), clinician(), AppointmentType.dosing_session) == at(12)
    # The patient's day ends at 21:00: a follow-up from 20:30 just fits.
    assert check(at(20, 30), clinician()) == at(21)


@pytest.mark.parametrize(
    ("starts_at", "c", "kind", "message"),
    [
        (NOW - timedelta(minutes=1), clinician(), AppointmentType.follow_up, "cannot start in the past"),
        (at(10), clinician(active=False), AppointmentType.follow_up, "is not taking appointments"),
        (at(10), clinician(role=Role.therapist), AppointmentType.follow_up, "is held by a psychiatric_clinician"),
        (at(10), clinician(), AppointmentType.preparation, "is held by a therapist"),
        (at(10), clinician(states=("OK",)), AppointmentType.follow_up, "not licensed in the patient's state (TX)"),
        # Windows 08:00-12:00: 11:45 would end past 12:00; 07:30 starts before 08:00.
        (at(11, 45), clinician(start_minute=480, end_minute=720), AppointmentType.follow_up, "not available"),
        (at(7, 30), clinician(start_minute=480, end_minute=720), AppointmentType.follow_up, "not available"),
        (at(10), clinician(time_off=[(at(10, 15), at(11))]), AppointmentType.follow_up, "is away during"),
        (at(20, 45), clinician(), AppointmentType.follow_up, "outside the patient's local day (08:00 to 21:00"),
        (at(7, 30), clinician(), AppointmentType.follow_up, "outside the patient's local day"),
    ],
)
def test_a_time_that_may_not_be_booked_is_refused_with_its_reason(
    starts_at: datetime, c: ClinicianSchedule, kind: AppointmentType, message: str
) -> None:
    with pytest.raises(RuleViolation, match=re.escape(message)):
        check(starts_at, c, kind)


def test_no_such_clinician_is_not_found() -> None:
    with pytest.raises(NotFound, match="no clinician dr-a"):
        check(at(10), None)


def test_the_patients_other_appointment_refuses_an_overlapping_time_and_not_an_adjacent_one() -> None:
    with pytest.raises(RuleViolation, match="the patient already has an appointment at that time"):
        check(at(10), clinician(), taken=[(at(10, 29), at(11))])
    assert check(at(10), clinician(), taken=[(at(10, 30), at(11)), (at(9), at(10))]) == at(10, 30)


def test_a_review_that_may_book_any_hour_is_let_out_of_the_patients_day_but_not_the_clinicians_hours() -> None:
    assert check(at(3), clinician(), AppointmentType.urgent_review, any_hour=True) == at(3, 30)
    with pytest.raises(RuleViolation, match="outside the patient's local day"):
        check(at(3), clinician(), AppointmentType.urgent_review)
    with pytest.raises(RuleViolation, match="not available"):
        check(at(3), clinician(start_minute=480, end_minute=720), AppointmentType.urgent_review, any_hour=True)


def test_only_a_review_booked_for_an_urgent_review_may_move_at_any_hour() -> None:
    assert booking.review_may_book_any_hour("urgent_review", "urgent")
    assert not booking.review_may_book_any_hour("urgent_review", "high")
    assert not booking.review_may_book_any_hour("urgent_review", None)
    assert not booking.review_may_book_any_hour("follow_up", "urgent")


def test_only_a_booked_appointment_that_has_started_can_be_settled() -> None:
    appointment_id = uuid.uuid4()
    booking.require_settleable("booked", appointment_id, NOW, NOW, "completed")
    with pytest.raises(RuleViolation, match="has not started cannot be marked no_show"):
        booking.require_settleable("booked", appointment_id, NOW + timedelta(seconds=1), NOW, "no_show")
    with pytest.raises(RuleViolation, match="is cancelled; only a booked appointment can be marked completed"):
        booking.require_settleable("cancelled", appointment_id, NOW, NOW, "completed")
    with pytest.raises(RuleViolation, match="only a booked appointment can be rescheduled"):
        booking.require_booked("completed", appointment_id, "rescheduled")


# --- which slots are offered ---------------------------------------------------------


def slots(
    schedules: list[ClinicianSchedule],
    *,
    limit: int = 5,
    taken: list[tuple[datetime, datetime]] | None = None,
    any_hour: bool = False,
    kind: AppointmentType = AppointmentType.follow_up,
) -> list[tuple[str, str]]:
    found = booking.earliest_slots(
        POLICY, schedules, kind, PATIENT, taken or [], (at(0), at(0, day=2)), limit=limit, any_hour=any_hour
    )
    return [(s.clinician_id, s.starts_at.strftime("%a %H:%M")) for s in found]


def test_slots_are_earliest_first_across_clinicians_ties_by_id_inside_the_patients_day() -> None:
    a, b = clinician("dr-a"), clinician("dr-b", start_minute=9 * 60)
    assert slots([b, a], limit=4) == [
        ("dr-a", "Mon 08:00"),
        ("dr-a", "Mon 08:30"),
        ("dr-a", "Mon 09:00"),
        ("dr-b", "Mon 09:00"),
    ]


def test_slots_skip_the_clinicians_bookings_and_time_off_and_the_patients_appointments() -> None:
    c = clinician(booked=[(at(8), at(8, 30))], time_off=[(at(9), at(9, 10))])
    assert slots([c], limit=3, taken=[(at(8, 30), at(9))]) == [
        ("dr-a", "Mon 09:30"),
        ("dr-a", "Mon 10:00"),
        ("dr-a", "Mon 10:30"),
    ]


def test_slots_at_any_hour_start_at_midnight_and_the_day_ends_at_21() -> None:
    assert slots([clinician()], limit=1, any_hour=True) == [("dr-a", "Mon 00:00")]
    evening = booking.earliest_slots(
        POLICY, [clinician()], AppointmentType.follow_up, PATIENT, [], (at(20), at(23)), limit=10
    )
    assert [s.starts_at.strftime("%H:%M") for s in evening] == ["20:00", "20:30"]


# --- eligibility ---------------------------------------------------------------------


def test_a_decision_older_than_or_as_old_as_the_one_applied_changes_nothing() -> None:
    assert courses.eligibility_change(3, EligibilityOutcome.eligible, 2) is None
    assert courses.eligibility_change(3, EligibilityOutcome.eligible, 3) is None
    assert courses.eligibility_change(3, EligibilityOutcome.eligible, 4) is not None


def test_an_unnumbered_decision_applies_and_leaves_the_last_number_in_place() -> None:
    change = courses.eligibility_change(3, EligibilityOutcome.ineligible, None)
    assert change is not None and change.applied == {"eligibility_outcome": "ineligible"}
    first = courses.eligibility_change(None, EligibilityOutcome.eligible, 1)
    assert first is not None and first.applied == {"eligibility_outcome": "eligible", "eligibility_sequence": 1}


def test_what_each_outcome_books_and_cancels() -> None:
    eligible = courses.eligibility_change(None, EligibilityOutcome.eligible, 1)
    ineligible = courses.eligibility_change(None, EligibilityOutcome.ineligible, 1)
    review = courses.eligibility_change(None, EligibilityOutcome.needs_review, 1)
    assert eligible is not None and (eligible.book_evaluation, eligible.cancel_kinds) == (True, ())
    assert ineligible is not None and not ineligible.book_evaluation
    assert ineligible.cancel_kinds == (AppointmentType.initial_evaluation, AppointmentType.dosing_session)
    assert review is not None and (review.book_evaluation, review.cancel_kinds) == (False, ())
    assert courses.is_ineligible("ineligible") and not courses.is_ineligible(None)


# --- the course ----------------------------------------------------------------------


def test_the_course_times_follow_the_policy_and_the_plans_cadence() -> None:
    assert courses.plan_cadence_days(POLICY, None) == 7, "weekly by default"
    assert courses.plan_cadence_days(POLICY, 3) == 3
    start = courses.course_start(POLICY, NOW)
    assert start == NOW + timedelta(hours=1)
    assert courses.first_dosing_at(POLICY, start, at(10)) == at(10, day=1)
    assert courses.first_dosing_at(POLICY, start, None) == start + timedelta(days=1), "no preparation found"
    assert courses.dosing_at(at(10), 1, 7) == at(10)
    assert courses.dosing_at(at(10), 3, 7) == at(10, day=14)
    assert courses.integration_at(POLICY, at(12)) == at(8, day=1)
    assert courses.rebook_from(at(10), at(12)) == at(12)
    assert courses.rebook_from(at(14), at(12)) == at(14)


# --- review visits -------------------------------------------------------------------


def test_an_urgent_review_is_looked_for_now_at_any_hour_until_it_is_due() -> None:
    due = NOW + timedelta(hours=4)
    assert courses.review_searches(POLICY, ReviewPriority.urgent, NOW, due) == [courses.Search(NOW, due, any_hour=True)]


@pytest.mark.parametrize("priority", [ReviewPriority.high, ReviewPriority.routine])
def test_any_other_review_leaves_the_routine_lead_in_the_patients_day_then_looks_past_due(
    priority: ReviewPriority,
) -> None:
    due = NOW + timedelta(hours=4)
    start = NOW + POLICY.routine_lead
    assert courses.review_searches(POLICY, priority, NOW, due) == [
        courses.Search(start, due, any_hour=False),
        courses.Search(start, start + POLICY.search_horizon, any_hour=False, after_due=True),
    ]


def test_the_reason_no_review_visit_was_booked() -> None:
    assert courses.review_unavailable_reason(False, ReviewPriority.urgent) == "patient_location_unknown"
    assert courses.review_unavailable_reason(True, ReviewPriority.urgent) == "no_licensed_clinician_free"
    assert courses.review_unavailable_reason(True, ReviewPriority.high) == "no_licensed_clinician_free_in_patient_day"


def test_another_policy_is_honoured() -> None:
    """The decisions read the policy they are given, not the one in force."""
    night_owl = BookingPolicy(patient_day_start_minute=0, default_cadence_days=14)
    assert courses.plan_cadence_days(night_owl, None) == 14
    ends = booking.check_bookable(
        night_owl,
        now=NOW,
        patient=PATIENT,
        appointment_type=AppointmentType.follow_up,
        clinician_id="dr-a",
        clinician=clinician(),
        patient_taken=[],
        starts_at=at(3),
    )
    assert ends == at(3, 30)
