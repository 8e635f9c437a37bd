"""Scheduling's handlers in-process against real PostgreSQL: review visits by priority, the visit's
new-patient flag, and superseding eligibility decisions.

The clock is the real one, so the patient's time zone is chosen per test to put "now" at a known
local hour (a fixed-offset Etc/GMT zone), and the clinician works around the clock in that zone:
the patient's day is then the only thing that can keep a review visit out of the night.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from carecoord_contracts import Event
from carecoord_contracts.common import AppointmentType, EligibilityOutcome, ReviewPriority
from carecoord_contracts.intake import EligibilityDetermined
from carecoord_contracts.safety import ClinicianReviewOpened
from carecoord_devstack.stack import Stack
from carecoord_scheduling import booking
from carecoord_scheduling.domain.policy import POLICY
from carecoord_scheduling.models import appointments, clinicians, weekly_availability
from carecoord_shared.errors import RuleViolation
from tests.service_harness import ServiceHarness


@pytest.fixture(scope="module")
async def scheduling(stack: Stack) -> AsyncIterator[ServiceHarness]:
    async with ServiceHarness.running(stack, "scheduling", database="scheduling_reviews_it") as harness:
        yield harness


async def publish(scheduling: ServiceHarness, event: Event, patient_id: uuid.UUID, producer: str) -> None:
    await scheduling.deliver(event, patient_id=patient_id, producer=producer)


async def appointments_of(scheduling: ServiceHarness, patient_id: uuid.UUID) -> list[Any]:
    query = select(appointments).where(appointments.c.patient_id == patient_id).order_by(appointments.c.starts_at)
    return await scheduling.rows(query)


async def emitted(scheduling: ServiceHarness, patient_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    return await scheduling.emitted(event_type, patient_id=patient_id)


def zone_where_it_is(local_hour: int) -> str:
    """A fixed-offset zone in which the current UTC hour reads as ``local_hour`` (Etc/GMT signs are inverted)."""
    offset = (local_hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


_state_counter = iter(["AL", "AK", "AZ", "AR", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY"])


async def patient_in(scheduling: ServiceHarness, zone: str, **hours: int) -> tuple[uuid.UUID, str]:
    """A registered patient alone in a state with one clinician of their own (so tests do not share clinicians)."""
    state = next(_state_counter)
    patient_id = uuid.uuid4()
    clinician_id = f"dr-{patient_id.hex[:12]}"
    async with scheduling.uow.transaction() as tx:
        await tx.session.execute(
            insert(clinicians).values(
                clinician_id=clinician_id, role="psychiatric_clinician", time_zone=zone, licensed_states=[state]
            )
        )
        await tx.session.execute(
            insert(weekly_availability),
            [
                {
                    "clinician_id": clinician_id,
                    "weekday": d,
                    "start_minute": hours.get("start_minute", 0),
                    "end_minute": hours.get("end_minute", 24 * 60),
                }
                for d in range(7)
            ],
        )
    await publish(scheduling, decision(EligibilityOutcome.needs_review, state, zone, None), patient_id, "intake")
    return patient_id, state


def decision(outcome: EligibilityOutcome, state: str, zone: str, sequence: int | None) -> EligibilityDetermined:
    return EligibilityDetermined(
        decision_id=uuid.uuid4(),
        outcome=outcome,
        reasons=["x"],
        rule_version="2026.11.1",
        state_of_residence=state,
        time_zone=zone,
        sequence=sequence,
    )


def review(priority: ReviewPriority, due_in: timedelta) -> ClinicianReviewOpened:
    return ClinicianReviewOpened(
        review_id=uuid.uuid4(),
        reason="grade_2_side_effect",
        priority=priority,
        due_at=datetime.now(UTC) + due_in,
        triggers=["x"],
        rule_version="2026.11.2",
    )


def local(at: datetime, zone: str) -> datetime:
    return at.astimezone(ZoneInfo(zone))


def in_patient_day(starts_at: datetime, ends_at: datetime, zone: str) -> bool:
    start, end = local(starts_at, zone), local(ends_at, zone)
    minutes = lambda t: t.hour * 60 + t.minute  # noqa: E731
    return (
        start.date() == end.date()
        and POLICY.patient_day_start_minute <= minutes(start)
        and minutes(end) <= POLICY.patient_day_end_minute
    )


# --- item 8: which reviews may be booked at any hour -------------------------------


async def test_at_night_an_urgent_review_is_seen_now_and_a_high_one_waits_for_the_patients_morning(
    scheduling: ServiceHarness,
) -> None:
    zone = zone_where_it_is(1)  # 01:xx for the patient
    patient, _ = await patient_in(scheduling, zone)
    urgent = review(ReviewPriority.urgent, timedelta(hours=4))
    await publish(scheduling, urgent, patient, "safety")
    [visit] = await appointments_of(scheduling, patient)
    assert visit.review_id == urgent.review_id and visit.review_priority == "urgent"
    assert visit.ends_at <= urgent.due_at and local(visit.starts_at, zone).hour < 8, "urgent: at any hour, within due"

    # The same due time at high priority: nothing inside the patient's day ends before it is due
    # (01:xx + 4 h is still night), so the visit is the first slot of the patient's morning.
    high = review(ReviewPriority.high, timedelta(hours=4))
    await publish(scheduling, high, patient, "safety")
    [high_visit] = [a for a in await appointments_of(scheduling, patient) if a.review_id == high.review_id]
    assert high_visit.review_priority == "high"
    assert in_patient_day(high_visit.starts_at, high_visit.ends_at, zone), local(high_visit.starts_at, zone)
    assert local(high_visit.starts_at, zone).hour == 8 and local(high_visit.starts_at, zone).minute == 0
    assert high_visit.starts_at > high.due_at, "booked past due rather than at night"
    assert await emitted(scheduling, patient, "ReviewAppointmentUnavailable") == []
    [booked] = [
        b for b in await emitted(scheduling, patient, "AppointmentBooked") if b["review_id"] == str(high.review_id)
    ]
    assert booked["appointment_type"] == "urgent_review"


async def test_a_routine_review_takes_the_first_slot_of_the_patients_day_that_ends_by_its_due_time(
    scheduling: ServiceHarness,
) -> None:
    zone = zone_where_it_is(1)
    patient, _ = await patient_in(scheduling, zone)
    now_local = local(datetime.now(UTC), zone)
    # Due exactly when the first slot of the patient's day (08:00-08:30) ends: at the edge, within due.
    eight_thirty = now_local.replace(hour=8, minute=30, second=0, microsecond=0)
    routine = review(ReviewPriority.routine, eight_thirty.astimezone(UTC) - datetime.now(UTC))
    await publish(scheduling, routine, patient, "safety")
    [visit] = await appointments_of(scheduling, patient)
    assert local(visit.starts_at, zone) == now_local.replace(hour=8, minute=0, second=0, microsecond=0)
    assert visit.ends_at <= routine.due_at
    assert visit.review_priority == "routine"


async def test_a_non_urgent_review_with_no_slot_in_the_patients_day_says_so_while_an_urgent_one_books(
    scheduling: ServiceHarness,
) -> None:
    zone = zone_where_it_is(1)
    # The clinician works nights only (00:00-06:00 in the patient's zone).
    patient, _ = await patient_in(scheduling, zone, start_minute=0, end_minute=6 * 60)
    high = review(ReviewPriority.high, timedelta(hours=24))
    await publish(scheduling, high, patient, "safety")
    assert await appointments_of(scheduling, patient) == [], "no night visit for a high-priority review"
    [unavailable] = await emitted(scheduling, patient, "ReviewAppointmentUnavailable")
    assert unavailable["review_id"] == str(high.review_id)
    assert unavailable["reason"] == "no_licensed_clinician_free_in_patient_day"

    urgent = review(ReviewPriority.urgent, timedelta(hours=4))
    await publish(scheduling, urgent, patient, "safety")
    [visit] = await appointments_of(scheduling, patient)
    assert visit.review_id == urgent.review_id and local(visit.ends_at, zone).hour < 7


# --- item 8: the visit says whether the patient is new to the practice -----------


async def test_the_first_completed_visit_is_a_new_patients_and_the_next_an_established_ones(
    scheduling: ServiceHarness,
) -> None:
    zone = "America/Chicago"
    patient, _ = await patient_in(scheduling, zone)
    [clinician_id] = [
        r.clinician_id
        for r in await _rows(
            scheduling, select(clinicians.c.clinician_id).where(clinicians.c.clinician_id == f"dr-{patient.hex[:12]}")
        )
    ]
    started = datetime.now(UTC) - timedelta(days=3)
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with scheduling.uow.transaction() as tx:
        for n, appointment_id in enumerate(ids):
            await tx.session.execute(
                insert(appointments).values(
                    appointment_id=appointment_id,
                    patient_id=patient,
                    clinician_id=clinician_id,
                    appointment_type=AppointmentType.urgent_review.value,
                    starts_at=started + timedelta(days=n),
                    ends_at=started + timedelta(days=n, minutes=30),
                    rule_version=POLICY.version,
                )
            )
    for appointment_id in ids:
        async with scheduling.uow.transaction() as tx:
            await booking.complete(tx, await booking.appointment_for_update(tx, appointment_id))
    completed = await emitted(scheduling, patient, "AppointmentCompleted")
    assert [(c["appointment_id"], c["new_patient"]) for c in completed] == [(str(ids[0]), True), (str(ids[1]), False)]


async def _rows(scheduling: ServiceHarness, query: Any) -> list[Any]:
    return await scheduling.rows(query)


# --- item 9: a superseding eligibility decision -----------------------------------


async def test_a_superseding_ineligible_decision_cancels_the_evaluation_and_a_stale_one_changes_nothing(
    scheduling: ServiceHarness,
) -> None:
    zone = "America/Chicago"
    patient, state = await patient_in(scheduling, zone)
    await publish(scheduling, decision(EligibilityOutcome.eligible, state, zone, 1), patient, "intake")
    [evaluation] = await appointments_of(scheduling, patient)
    assert evaluation.appointment_type == "initial_evaluation" and evaluation.status == "booked"

    await publish(scheduling, decision(EligibilityOutcome.ineligible, state, zone, 2), patient, "intake")
    [evaluation] = await appointments_of(scheduling, patient)
    assert (evaluation.status, evaluation.cancel_reason) == ("cancelled", "eligibility_withdrawn")
    [cancelled] = await emitted(scheduling, patient, "AppointmentCancelled")
    assert cancelled["reason"] == "eligibility_withdrawn"

    # An older decision arriving after the one that superseded it books nothing.
    await publish(scheduling, decision(EligibilityOutcome.eligible, state, zone, 1), patient, "intake")
    assert [a.status for a in await appointments_of(scheduling, patient)] == ["cancelled"]

    # The clinician's next re-evaluation makes them eligible again: a new evaluation is booked.
    await publish(scheduling, decision(EligibilityOutcome.eligible, state, zone, 3), patient, "intake")
    assert sorted(a.status for a in await appointments_of(scheduling, patient)) == ["booked", "cancelled"]


async def test_a_decision_without_a_sequence_applies_and_keeps_the_last_number_against_stale_ones(
    scheduling: ServiceHarness,
) -> None:
    zone = "America/Chicago"
    patient, state = await patient_in(scheduling, zone)
    await publish(scheduling, decision(EligibilityOutcome.eligible, state, zone, 3), patient, "intake")
    # From a producer that numbers nothing (an older intake during a rollout): applied.
    await publish(scheduling, decision(EligibilityOutcome.ineligible, state, zone, None), patient, "intake")
    assert [a.status for a in await appointments_of(scheduling, patient)] == ["cancelled"]
    # Decision 2 is older than the 3 already applied, unnumbered decision or not: nothing books.
    await publish(scheduling, decision(EligibilityOutcome.eligible, state, zone, 2), patient, "intake")
    assert [a.status for a in await appointments_of(scheduling, patient)] == ["cancelled"]


async def test_by_hand_a_review_visit_keeps_to_the_patients_day_unless_it_is_an_urgent_reviews(
    scheduling: ServiceHarness,
) -> None:
    zone = zone_where_it_is(1)
    patient, _ = await patient_in(scheduling, zone)
    urgent = review(ReviewPriority.urgent, timedelta(hours=4))
    high = review(ReviewPriority.high, timedelta(hours=4))
    for opened in (urgent, high):
        await publish(scheduling, opened, patient, "safety")
    rows = {a.review_id: a for a in await appointments_of(scheduling, patient)}
    night = rows[urgent.review_id].starts_at + timedelta(
        minutes=30
    )  # still the patient's night, after the urgent visit
    assert local(night, zone).hour < 8
    clinician_id = rows[urgent.review_id].clinician_id
    async with scheduling.uow.sessions() as session:
        person = await booking.require_patient(session, patient)
        # Booked by hand (no review behind it): inside the patient's day only.
        with pytest.raises(RuleViolation, match="outside the patient's local day"):
            await booking.check_bookable(session, person, AppointmentType.urgent_review, clinician_id, night)
        # Moving the urgent review's visit may stay at night; the high review's may not.
        assert booking.review_may_book_any_hour(rows[urgent.review_id])
        assert not booking.review_may_book_any_hour(rows[high.review_id])
        ends = await booking.check_bookable(
            session,
            person,
            AppointmentType.urgent_review,
            clinician_id,
            night,
            rescheduling=rows[urgent.review_id].appointment_id,
            any_hour=True,
        )
        assert ends == night + timedelta(minutes=30)
