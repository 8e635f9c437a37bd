"""What scheduling does when the care pathway moves: evaluation, course, holds, reviews.

Each function runs inside the consumer's transaction (the inbox has already
claimed the event), so its bookings, cancellations and events commit together.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_shared.contracts.common import AppointmentType
from carecoord_shared.contracts.scheduling import ReviewAppointmentUnavailable
from carecoord_shared.messaging.unit_of_work import Transaction

from . import booking
from .booking import Patient
from .models import appointments, patients, plans
from .rules import DISCONTINUED_REASON, HOLD_REASON, POLICY

log = structlog.get_logger("carecoord.scheduling")


async def remember_patient(tx: Transaction, patient_id: uuid.UUID, state: str, time_zone: str) -> None:
    values = {"state_of_residence": state, "time_zone": time_zone}
    await tx.session.execute(
        pg_insert(patients)
        .values(patient_id=patient_id, **values)
        .on_conflict_do_update(index_elements=[patients.c.patient_id], set_={**values, "updated_at": booking.now()})
    )


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
    start = booking.now() + POLICY.routine_lead
    booked = await booking.book_earliest(
        tx, patient, AppointmentType.initial_evaluation, not_before=start, not_after=start + POLICY.search_horizon
    )
    if booked is None:
        log.warning("scheduling.evaluation_unbookable", patient_id=str(patient_id))


async def remember_plan(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID, planned_sessions: int, cadence_days: int | None) -> None:
    await tx.session.execute(
        pg_insert(plans)
        .values(
            plan_id=plan_id,
            patient_id=patient_id,
            planned_sessions=planned_sessions,
            cadence_days=cadence_days or POLICY.default_cadence_days,
            status="draft",
        )
        .on_conflict_do_nothing(index_elements=[plans.c.plan_id])
    )


async def _plan(tx: Transaction, plan_id: uuid.UUID) -> Any:
    return (await tx.session.execute(select(plans).where(plans.c.plan_id == plan_id).with_for_update())).first()


async def _set_plan_status(tx: Transaction, plan_id: uuid.UUID, status: str) -> None:
    await tx.session.execute(update(plans).where(plans.c.plan_id == plan_id).values(status=status, updated_at=booking.now()))


async def book_course(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Preparation, then each dosing session at the plan's cadence with an integration session after it."""
    plan = await _plan(tx, plan_id)
    if plan is None:
        log.warning("scheduling.plan_unknown", plan_id=str(plan_id))
        return
    await _set_plan_status(tx, plan_id, "active")
    already = await tx.session.execute(select(appointments.c.appointment_id).where(appointments.c.plan_id == plan_id).limit(1))
    if already.first():
        return
    patient = await booking.find_patient(tx.session, patient_id)
    if patient is None:
        log.warning("scheduling.patient_location_unknown", patient_id=str(patient_id))
        return
    start = booking.now() + POLICY.routine_lead
    prep = await _course_step(tx, patient, AppointmentType.preparation, start, plan_id, None)
    first_dosing = (prep.slot.ends_at if prep else start) + POLICY.first_dosing_after_preparation
    cadence = timedelta(days=plan.cadence_days)
    for number in range(1, plan.planned_sessions + 1):
        target = first_dosing + (number - 1) * cadence
        dosing = await _course_step(tx, patient, AppointmentType.dosing_session, target, plan_id, number)
        if dosing is not None:
            after = dosing.slot.ends_at + POLICY.integration_after_dosing
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
    tx: Transaction, patient: Patient, kind: AppointmentType, not_before: datetime, plan_id: uuid.UUID, number: int | None
) -> booking.Booked | None:
    booked = await booking.book_earliest(
        tx, patient, kind, not_before=not_before, not_after=not_before + POLICY.search_horizon, plan_id=plan_id, course_session=number
    )
    if booked is None:
        log.warning("scheduling.course_step_unbookable", plan_id=str(plan_id), appointment_type=kind.value, session=number)
    return booked


async def hold_dosing_sessions(tx: Transaction, plan_id: uuid.UUID, patient_id: uuid.UUID) -> None:
    """Cancel the patient's upcoming dosing sessions; therapy and clinician appointments stay."""
    await _set_plan_status(tx, plan_id, "paused")
    for row in await _upcoming(tx, patient_id, AppointmentType.dosing_session):
        await booking.cancel(tx, row, HOLD_REASON)


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
    if patient is None:
        return
    earliest = booking.now() + POLICY.routine_lead
    for row in held.all():
        not_before = max(row.starts_at, earliest)
        booked = await _course_step(tx, patient, AppointmentType.dosing_session, not_before, row.plan_id, row.course_session)
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
        .where(appointments.c.plan_id == plan_id, appointments.c.status == "booked", appointments.c.starts_at > booking.now())
        .order_by(appointments.c.starts_at)
        .with_for_update()
    )
    for row in rows.all():
        await booking.cancel(tx, row, DISCONTINUED_REASON)


async def _upcoming(tx: Transaction, patient_id: uuid.UUID, kind: AppointmentType) -> list[Any]:
    rows = await tx.session.execute(
        select(appointments)
        .where(
            appointments.c.patient_id == patient_id,
            appointments.c.appointment_type == kind.value,
            appointments.c.status == "booked",
            appointments.c.starts_at > booking.now(),
        )
        .order_by(appointments.c.starts_at)
        .with_for_update()
    )
    return list(rows.all())


async def book_review(tx: Transaction, review_id: uuid.UUID, due_at: datetime, patient_id: uuid.UUID) -> None:
    """An urgent review with a licensed clinician that ends before the review is due, or say that there is none."""
    taken = await tx.session.execute(
        select(appointments.c.appointment_id).where(appointments.c.review_id == review_id, appointments.c.status != "cancelled")
    )
    if taken.first():
        return
    patient = await booking.find_patient(tx.session, patient_id)
    booked = None
    if patient is not None:
        booked = await booking.book_earliest(
            tx, patient, AppointmentType.urgent_review, not_before=booking.now(), not_after=due_at, review_id=review_id
        )
    if booked is None:
        reason = "patient_location_unknown" if patient is None else "no_licensed_clinician_free"
        log.warning("scheduling.review_unbookable", review_id=str(review_id), reason=reason)
        tx.emit(ReviewAppointmentUnavailable(review_id=review_id, due_at=due_at, reason=reason), patient_id=patient_id)
