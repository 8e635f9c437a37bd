"""What scheduling does when the care pathway moves: evaluation, course, holds, reviews.

Each function runs inside the consumer's transaction (the inbox has already
claimed the event), so its bookings, cancellations and events commit together:
it loads what it needs, lets domain.courses decide, and books, cancels and
emits what that says (the bookings through booking.py).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Row, bindparam, select, update

from carecoord_contracts.common import AppointmentType, ReviewPriority
from carecoord_contracts.intake import EligibilityDetermined
from carecoord_contracts.scheduling import ReviewAppointmentUnavailable
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.statements import insert_new, upsert

from . import booking
from .domain import courses as decide
from .domain.booking import Patient
from .domain.policy import DISCONTINUED_REASON, HOLD_REASON, INELIGIBLE_REASON, POLICY
from .models import appointments, patients, plans

log = structlog.get_logger("carecoord.scheduling")


async def remember_patient(
    tx: Transaction, patient_id: uuid.UUID, state: str, time_zone: str, **eligibility: str | int | None
) -> None:
    values = {"state_of_residence": state, "time_zone": time_zone, **eligibility}
    # A statement SQLAlchemy compiles once per column set (the dialect's upsert is compiled on every event).
    await upsert(
        tx.session,
        patients,
        "patient_id",
        {"patient_id": patient_id, **values},
        on_update={"updated_at": booking.now()},
    )


async def apply_eligibility(tx: Transaction, patient_id: uuid.UUID, event: EligibilityDetermined) -> None:
    """Apply intake's latest decision about the patient (domain.courses.eligibility_change says what it does)."""
    row = (
        await tx.session.execute(select(patients).where(patients.c.patient_id == patient_id).with_for_update())
    ).first()
    change = decide.eligibility_change(None if row is None else row.eligibility_sequence, event.outcome, event.sequence)
    if change is None:
        log.info("scheduling.eligibility_superseded", patient_id=str(patient_id), sequence=event.sequence)
        return
    await remember_patient(tx, patient_id, event.state_of_residence, event.time_zone, **change.applied)
    if change.book_evaluation:
        await book_initial_evaluation(tx, patient_id)
        await book_waiting_courses(tx, patient_id)
    for kind in change.cancel_kinds:
        await booking.cancel_all(tx, await _upcoming(tx, patient_id, kind), INELIGIBLE_REASON)


async def _ineligible(tx: Transaction, patient_id: uuid.UUID) -> bool:
    outcome = await tx.session.scalar(select(patients.c.eligibility_outcome).where(patients.c.patient_id == patient_id))
    return decide.is_ineligible(outcome)


async def book_initial_evaluation(tx: Transaction, patient_id: uuid.UUID) -> None:
    """An eligible patient gets the earliest evaluation slot, once (a second eligibility decision books nothing)."""
    existing = await tx.session.execute(
        select(appointments.c.appointment_id).where(
            appointments.c.patient_id == patient_id,
            appointments.c.appointment_type == AppointmentType.initial_evaluation.value,
            appointments.c.status.in_(("booked", "completed")),
        )
    )
    if existing.first():
        return
    patient = await booking.require_patient(tx.session, patient_id)
    start = decide.course_start(POLICY, booking.now())
    booked = await booking.book_earliest(
        tx, patient, AppointmentType.initial_evaluation, not_before=start, not_after=start + POLICY.search_horizon
    )
    if booked is None:
        log.warning("scheduling.evaluation_unbookable", patient_id=str(patient_id))


async def remember_plan(
    tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID, planned_sessions: int, cadence_days: int | None
) -> None:
    await insert_new(
        tx.session,
        plans,
        "plan_id",
        plan_id=plan_id,
        patient_id=patient_id,
        planned_sessions=planned_sessions,
        cadence_days=decide.plan_cadence_days(POLICY, cadence_days),
        status="draft",
    )


# Statements of the pause's path built once and their values bound when they run: building them and
# their cache keys per event cost more CPU than sending them (#22's profile). Binds are named apart
# from the columns: an UPDATE takes a parameter named as a column for its SET.
@functools.cache
def _plan_statement() -> Any:
    return select(plans).where(plans.c.plan_id == bindparam("p_plan", type_=plans.c.plan_id.type)).with_for_update()


@functools.cache
def _set_plan_status_statement() -> Any:
    return (
        update(plans)
        .where(plans.c.plan_id == bindparam("p_plan", type_=plans.c.plan_id.type))
        .values(
            status=bindparam("p_status", type_=plans.c.status.type),
            updated_at=bindparam("p_now", type_=plans.c.updated_at.type),
        )
    )


@functools.cache
def _upcoming_statement() -> Any:
    return (
        select(appointments)
        .where(
            appointments.c.patient_id == bindparam("p_patient", type_=appointments.c.patient_id.type),
            appointments.c.appointment_type == bindparam("p_kind", type_=appointments.c.appointment_type.type),
            appointments.c.status == "booked",
            appointments.c.starts_at > bindparam("p_now", type_=appointments.c.starts_at.type),
        )
        .order_by(appointments.c.starts_at)
        .with_for_update()
    )


async def _plan(tx: Transaction, plan_id: uuid.UUID) -> Row[Any] | None:
    return (await tx.session.execute(_plan_statement(), {"p_plan": plan_id})).first()


async def _set_plan_status(tx: Transaction, plan_id: uuid.UUID, status: str) -> None:
    params = {"p_plan": plan_id, "p_status": status, "p_now": booking.now()}
    await tx.session.execute(_set_plan_status_statement(), params)


async def book_course(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Preparation, then each dosing session at the plan's cadence with an integration session after it."""
    plan = await _plan(tx, plan_id)
    if plan is None:
        log.warning("scheduling.plan_unknown", plan_id=str(plan_id))
        return
    await _set_plan_status(tx, plan_id, "active")
    already = await tx.session.execute(
        select(appointments.c.appointment_id).where(appointments.c.plan_id == plan_id).limit(1)
    )
    if already.first():
        return
    if await _ineligible(tx, patient_id):
        log.warning("scheduling.course_not_booked_ineligible", plan_id=str(plan_id))
        return
    patient = await booking.find_patient(tx.session, patient_id)
    if patient is None:
        log.warning("scheduling.patient_location_unknown", patient_id=str(patient_id))
        return
    start = decide.course_start(POLICY, booking.now())
    prep = await _course_step(tx, patient, AppointmentType.preparation, start, plan_id, None)
    first_dosing = decide.first_dosing_at(POLICY, start, prep.slot.ends_at if prep else None)
    for number in range(1, plan.planned_sessions + 1):
        target = decide.dosing_at(first_dosing, number, plan.cadence_days)
        dosing = await _course_step(tx, patient, AppointmentType.dosing_session, target, plan_id, number)
        if dosing is not None:
            after = decide.integration_at(POLICY, dosing.slot.ends_at)
            await _course_step(tx, patient, AppointmentType.integration, after, plan_id, number)


async def book_waiting_courses(tx: Transaction, patient_id: uuid.UUID) -> None:
    """A plan activated before the patient's location reached scheduling gets its course once it does."""
    waiting = await tx.session.execute(
        select(plans.c.plan_id).where(
            plans.c.patient_id == patient_id,
            plans.c.status == "active",
            ~select(appointments.c.appointment_id).where(appointments.c.plan_id == plans.c.plan_id).exists(),
        )
    )
    for plan_id in waiting.scalars().all():
        await book_course(tx, plan_id, patient_id)


async def _course_step(
    tx: Transaction,
    patient: Patient,
    kind: AppointmentType,
    not_before: datetime,
    plan_id: uuid.UUID,
    number: int | None,
) -> booking.Booked | None:
    booked = await booking.book_earliest(
        tx,
        patient,
        kind,
        not_before=not_before,
        not_after=not_before + POLICY.search_horizon,
        plan_id=plan_id,
        course_session=number,
    )
    if booked is None:
        log.warning(
            "scheduling.course_step_unbookable", plan_id=str(plan_id), appointment_type=kind.value, session=number
        )
    return booked


async def hold_dosing_sessions(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Cancel the patient's upcoming dosing sessions; therapy and clinician appointments stay."""
    await _set_plan_status(tx, plan_id, "paused")
    await booking.cancel_all(tx, await _upcoming(tx, patient_id, AppointmentType.dosing_session), HOLD_REASON)


async def rebook_held_sessions(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Give every session the hold cancelled a new booking, at its old time when still free, in order."""
    await _set_plan_status(tx, plan_id, "active")
    held = await tx.session.execute(
        select(appointments)
        .where(
            appointments.c.patient_id == patient_id,
            appointments.c.appointment_type == AppointmentType.dosing_session.value,
            appointments.c.status == "cancelled",
            appointments.c.cancel_reason == HOLD_REASON,
            appointments.c.rebooked_as.is_(None),
        )
        .order_by(appointments.c.starts_at)
        .with_for_update()
    )
    patient = await booking.find_patient(tx.session, patient_id)
    if patient is None or await _ineligible(tx, patient_id):
        return
    earliest = decide.course_start(POLICY, booking.now())
    for row in held.all():
        not_before = decide.rebook_from(row.starts_at, earliest)
        booked = await _course_step(
            tx, patient, AppointmentType.dosing_session, not_before, row.plan_id, row.course_session
        )
        if booked is None:
            continue
        await tx.session.execute(
            update(appointments)
            .where(appointments.c.appointment_id == row.appointment_id)
            .values(rebooked_as=booked.appointment_id)
        )
        earliest = booked.slot.ends_at


async def cancel_remaining(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    await _set_plan_status(tx, plan_id, "discontinued")
    rows = await tx.session.execute(
        select(appointments)
        .where(
            appointments.c.plan_id == plan_id,
            appointments.c.status == "booked",
            appointments.c.starts_at > booking.now(),
        )
        .order_by(appointments.c.starts_at)
        .with_for_update()
    )
    await booking.cancel_all(tx, rows.all(), DISCONTINUED_REASON)


async def _upcoming(tx: Transaction, patient_id: uuid.UUID, kind: AppointmentType) -> list[Any]:
    params = {"p_patient": patient_id, "p_kind": kind.value, "p_now": booking.now()}
    return list((await tx.session.execute(_upcoming_statement(), params)).all())


async def book_review(
    tx: Transaction, review_id: uuid.UUID, due_at: datetime, patient_id: uuid.UUID, priority: ReviewPriority
) -> None:
    """A review visit with a licensed clinician in their availability, or say that there is none
    (where it is looked for: domain.courses.review_searches)."""
    taken = await tx.session.execute(
        select(appointments.c.appointment_id).where(
            appointments.c.review_id == review_id, appointments.c.status != "cancelled"
        )
    )
    if taken.first():
        return
    patient = await booking.find_patient(tx.session, patient_id)
    booked = None
    links = {"review_id": review_id, "review_priority": priority}
    if patient is not None:
        for search in decide.review_searches(POLICY, priority, booking.now(), due_at):
            booked = await booking.book_earliest(
                tx,
                patient,
                AppointmentType.urgent_review,
                not_before=search.not_before,
                not_after=search.not_after,
                any_hour=search.any_hour,
                **links,
            )
            if booked is not None:
                if search.after_due:
                    log.warning("scheduling.review_booked_after_due", review_id=str(review_id), priority=priority.value)
                break
    if booked is None:
        reason = decide.review_unavailable_reason(patient is not None, priority)
        log.warning("scheduling.review_unbookable", review_id=str(review_id), reason=reason, priority=priority.value)
        tx.emit(ReviewAppointmentUnavailable(review_id=review_id, due_at=due_at, reason=reason), patient_id=patient_id)
