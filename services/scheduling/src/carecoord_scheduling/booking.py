"""Booking use cases: each runs inside the caller's transaction, loads what the decision needs,
decides (domain.booking, pure), writes and emits its events.

Shared by the HTTP routes and the event handlers, so a booking rule holds
whichever door a booking comes through. The database has the last word on
double booking (the exclusion constraint on appointments): a conflicting
insert fails inside a savepoint and becomes a :class:`SlotTaken`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import ColumnElement, Row, and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import AppointmentType, ReviewPriority
from carecoord_contracts.scheduling import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentRescheduled,
)
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from . import care_team
from .domain import booking as decide
from .domain.availability import Interval, WeeklyWindow
from .domain.booking import ClinicianSchedule, Patient, Slot
from .domain.policy import APPOINTMENT_KINDS, POLICY
from .models import appointments, availability_exceptions, clinicians, patients, weekly_availability

log = structlog.get_logger("carecoord.scheduling")


class SlotTaken(RuleViolation):
    """The clinician already has an appointment overlapping the requested time."""


@dataclass(frozen=True)
class Booked:
    appointment_id: uuid.UUID
    slot: Slot


def now() -> datetime:
    return datetime.now(UTC)


async def find_patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient | None:
    row = (await session.execute(select(patients).where(patients.c.patient_id == patient_id))).first()
    return None if row is None else Patient(row.patient_id, row.state_of_residence, ZoneInfo(row.time_zone))


async def require_patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient:
    patient = await find_patient(session, patient_id)
    if patient is None:
        raise RuleViolation(
            f"scheduling does not know patient {patient_id}'s state and time zone yet (they come from intake's registration)"
        )
    return patient


async def schedules(
    session: AsyncSession, *, role: str, state: str, period: Interval, clinician_id: str | None = None
) -> list[ClinicianSchedule]:
    """Active clinicians of a role licensed in a state, with what keeps them busy during the period."""
    query = select(clinicians).where(
        clinicians.c.active, clinicians.c.role == role, clinicians.c.licensed_states.any(state)
    )
    if clinician_id is not None:
        query = query.where(clinicians.c.clinician_id == clinician_id)
    return await _with_busy(session, query, period)


async def clinician_schedule(session: AsyncSession, clinician_id: str, period: Interval) -> ClinicianSchedule | None:
    """One clinician, whatever their role, licences and whether active, with what keeps them busy during the period."""
    found = await _with_busy(session, select(clinicians).where(clinicians.c.clinician_id == clinician_id), period)
    return found[0] if found else None


async def _with_busy(session: AsyncSession, query: Any, period: Interval) -> list[ClinicianSchedule]:
    found = {
        r.clinician_id: ClinicianSchedule(
            r.clinician_id, r.role, ZoneInfo(r.time_zone), list(r.licensed_states), active=r.active
        )
        for r in await session.execute(query.order_by(clinicians.c.clinician_id))
    }
    if not found:
        return []
    ids = list(found)
    for w in await session.execute(select(weekly_availability).where(weekly_availability.c.clinician_id.in_(ids))):
        found[w.clinician_id].windows.append(WeeklyWindow(w.weekday, w.start_minute, w.end_minute))
    start, end = period
    for x in await session.execute(
        select(availability_exceptions).where(
            availability_exceptions.c.clinician_id.in_(ids),
            availability_exceptions.c.starts_at < end,
            availability_exceptions.c.ends_at > start,
        )
    ):
        found[x.clinician_id].time_off.append((x.starts_at, x.ends_at))
    for a in await session.execute(
        select(appointments.c.clinician_id, appointments.c.starts_at, appointments.c.ends_at).where(
            appointments.c.clinician_id.in_(ids), _live_during(start, end)
        )
    ):
        found[a.clinician_id].booked.append((a.starts_at, a.ends_at))
    return list(found.values())


def _live_during(start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(appointments.c.status != "cancelled", appointments.c.starts_at < end, appointments.c.ends_at > start)


async def patient_busy(
    session: AsyncSession, patient_id: uuid.UUID, period: Interval, *, except_id: uuid.UUID | None = None
) -> list[Interval]:
    query = select(appointments.c.starts_at, appointments.c.ends_at).where(
        appointments.c.patient_id == patient_id, _live_during(*period)
    )
    if except_id is not None:
        query = query.where(appointments.c.appointment_id != except_id)
    return [(r.starts_at, r.ends_at) for r in await session.execute(query)]


async def open_slots(
    session: AsyncSession,
    patient: Patient,
    appointment_type: AppointmentType,
    *,
    not_before: datetime,
    not_after: datetime,
    limit: int,
    clinician_id: str | None = None,
    any_hour: bool = False,
) -> list[Slot]:
    """The earliest free slots for this patient, with clinicians licensed in the patient's state (domain.booking)."""
    kind = APPOINTMENT_KINDS[appointment_type]
    period = (not_before, not_after)
    patient_taken = await patient_busy(session, patient.patient_id, period)
    found = await schedules(session, role=kind.role, state=patient.state, period=period, clinician_id=clinician_id)
    return decide.earliest_slots(
        POLICY, found, appointment_type, patient, patient_taken, period, limit=limit, any_hour=any_hour
    )


async def check_bookable(
    session: AsyncSession,
    patient: Patient,
    appointment_type: AppointmentType,
    clinician_id: str,
    starts_at: datetime,
    *,
    rescheduling: uuid.UUID | None = None,
    any_hour: bool = False,
) -> datetime:
    """Refuse, with a readable reason, a time the clinician does not offer; returns the end time.

    Overlap with the clinician's other appointments is left to the database,
    which is the only place that can decide it under concurrent requests.
    """
    at = now()
    period = (starts_at, starts_at + APPOINTMENT_KINDS[appointment_type].duration)
    return decide.check_bookable(
        POLICY,
        now=at,
        patient=patient,
        appointment_type=appointment_type,
        clinician_id=clinician_id,
        clinician=await clinician_schedule(session, clinician_id, period),
        patient_taken=await patient_busy(session, patient.patient_id, period, except_id=rescheduling),
        starts_at=starts_at,
        any_hour=any_hour,
    )


async def book(
    tx: Transaction,
    *,
    patient_id: uuid.UUID,
    slot: Slot,
    appointment_type: AppointmentType,
    plan_id: uuid.UUID | None = None,
    review_id: uuid.UUID | None = None,
    review_priority: ReviewPriority | None = None,
    course_session: int | None = None,
) -> uuid.UUID:
    # One booking change per patient at a time: two constraints (clinician's and
    # patient's) guard the insert, and two transactions booking one patient with
    # two clinicians at once could each wait on the other through them (deadlock).
    await tx.lock_patient(patient_id)
    appointment_id = uuid.uuid4()
    values = dict(
        appointment_id=appointment_id,
        patient_id=patient_id,
        clinician_id=slot.clinician_id,
        appointment_type=appointment_type.value,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        plan_id=plan_id,
        review_id=review_id,
        review_priority=None if review_priority is None else review_priority.value,
        course_session=course_session,
        rule_version=POLICY.version,
    )
    await _guarded(tx, insert(appointments).values(**values), slot)
    await care_team.booked(tx, patient_id, appointment_type, slot.clinician_id)
    tx.emit(
        AppointmentBooked(
            appointment_id=appointment_id,
            appointment_type=appointment_type,
            clinician_id=slot.clinician_id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            plan_id=plan_id,
            review_id=review_id,
        ),
        patient_id=patient_id,
    )
    return appointment_id


async def _guarded(tx: Transaction, statement: Any, slot: Slot) -> None:
    """Run an insert or update that may collide with another booking; a collision rolls back only this step."""
    try:
        async with tx.session.begin_nested():
            await tx.session.execute(statement)
    except IntegrityError as exc:
        cause = getattr(exc.orig, "__cause__", None)  # the asyncpg error behind SQLAlchemy's adapter
        constraint = getattr(cause, "constraint_name", None)
        if constraint == "ex_appointments_no_double_booking":
            raise SlotTaken(
                f"clinician {slot.clinician_id} is already booked at {slot.starts_at.isoformat()}: choose another slot"
            ) from None
        if constraint == "ex_appointments_patient_overlap":
            raise SlotTaken("the patient already has an appointment at that time") from None
        if constraint == "uq_appointments_review":
            raise RuleViolation("this review already has an appointment") from None
        raise


async def book_earliest(
    tx: Transaction,
    patient: Patient,
    appointment_type: AppointmentType,
    *,
    not_before: datetime,
    not_after: datetime,
    any_hour: bool = False,
    **links: Any,
) -> Booked | None:
    """Book the earliest free slot in the period; None when there is none."""
    while True:
        slots = await open_slots(
            tx.session,
            patient,
            appointment_type,
            not_before=not_before,
            not_after=not_after,
            limit=10,
            any_hour=any_hour,
        )
        if not slots:
            return None
        for slot in slots:
            try:
                appointment_id = await book(
                    tx, patient_id=patient.patient_id, slot=slot, appointment_type=appointment_type, **links
                )
                return Booked(appointment_id, slot)
            except SlotTaken:
                continue  # someone took it meanwhile: the next one
        not_before = slots[-1].starts_at + timedelta(seconds=1)


async def appointment_for_update(tx: Transaction, appointment_id: uuid.UUID) -> Row[Any]:
    row = (
        await tx.session.execute(
            select(appointments).where(appointments.c.appointment_id == appointment_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    return row


async def _set(tx: Transaction, appointment_id: uuid.UUID, **values: Any) -> None:
    await tx.session.execute(
        update(appointments).where(appointments.c.appointment_id == appointment_id).values(updated_at=now(), **values)
    )


async def cancel(tx: Transaction, row: Any, reason: str) -> None:
    await cancel_all(tx, [row], reason)


async def cancel_all(tx: Transaction, rows: Sequence[Any], reason: str) -> None:
    """Cancel each of ``rows`` (locked by the caller), in one statement; an event each, in their order.

    A hold or a discontinued plan cancels a course's remaining sessions at once: one round trip, not one a
    session. Each must still be booked, checked before anything is written."""
    for row in rows:
        decide.require_booked(row.status, row.appointment_id, "cancelled")
    if not rows:
        return
    await tx.session.execute(
        update(appointments)
        .where(appointments.c.appointment_id.in_([row.appointment_id for row in rows]))
        .values(updated_at=now(), status="cancelled", cancel_reason=reason)
    )
    for row in rows:
        tx.emit(
            AppointmentCancelled(
                appointment_id=row.appointment_id,
                appointment_type=AppointmentType(row.appointment_type),
                reason=reason,
                starts_at=row.starts_at,
            ),
            patient_id=row.patient_id,
        )


async def reschedule(tx: Transaction, row: Any, slot: Slot) -> None:
    decide.require_booked(row.status, row.appointment_id, "rescheduled")
    await tx.lock_patient(row.patient_id)  # as in book()
    await _guarded(
        tx,
        update(appointments)
        .where(appointments.c.appointment_id == row.appointment_id)
        .values(clinician_id=slot.clinician_id, starts_at=slot.starts_at, ends_at=slot.ends_at, updated_at=now()),
        slot,
    )
    tx.emit(
        AppointmentRescheduled(
            appointment_id=row.appointment_id,
            appointment_type=AppointmentType(row.appointment_type),
            clinician_id=slot.clinician_id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            previous_starts_at=row.starts_at,
        ),
        patient_id=row.patient_id,
    )


async def complete(tx: Transaction, row: Any) -> None:
    await _settle(tx, row, "completed")
    new_patient = not await _had_completed_visit(tx.session, row.patient_id, row.appointment_id)
    tx.emit(
        AppointmentCompleted(
            appointment_id=row.appointment_id,
            appointment_type=AppointmentType(row.appointment_type),
            clinician_id=row.clinician_id,
            started_at=row.starts_at,
            ended_at=min(row.ends_at, now()),
            plan_id=row.plan_id,
            new_patient=new_patient,
        ),
        patient_id=row.patient_id,
    )


async def _had_completed_visit(session: AsyncSession, patient_id: uuid.UUID, other_than: uuid.UUID) -> bool:
    """Whether the patient is established with the practice: some other appointment of theirs was completed."""
    found = await session.execute(
        select(appointments.c.appointment_id)
        .where(
            appointments.c.patient_id == patient_id,
            appointments.c.status == "completed",
            appointments.c.appointment_id != other_than,
        )
        .limit(1)
    )
    return found.first() is not None


def review_may_book_any_hour(row: Any) -> bool:
    """For an existing appointment (a reschedule): only a review booked for a priority that may book any hour."""
    return decide.review_may_book_any_hour(row.appointment_type, row.review_priority)


async def no_show(tx: Transaction, row: Any) -> None:
    await _settle(tx, row, "no_show")
    tx.emit(
        AppointmentNoShow(
            appointment_id=row.appointment_id,
            appointment_type=AppointmentType(row.appointment_type),
            starts_at=row.starts_at,
        ),
        patient_id=row.patient_id,
    )


async def _settle(tx: Transaction, row: Any, outcome: str) -> None:
    """Record how a booked appointment went; only once it has started."""
    decide.require_settleable(row.status, row.appointment_id, row.starts_at, now(), outcome)
    await _set(tx, row.appointment_id, status=outcome)


# --- the HTTP routes' use cases: each in the route's transaction (Access.transaction, which audits in it) ---


async def book_requested(
    tx: Transaction,
    *,
    patient_id: uuid.UUID,
    clinician_id: str,
    appointment_type: AppointmentType,
    starts_at: datetime,
) -> uuid.UUID:
    """A booking asked for by hand (a patient, a clinician, a service): checked, then booked."""
    patient = await require_patient(tx.session, patient_id)
    ends_at = await check_bookable(tx.session, patient, appointment_type, clinician_id, starts_at)
    return await book(
        tx,
        patient_id=patient.patient_id,
        slot=Slot(clinician_id, starts_at, ends_at),
        appointment_type=appointment_type,
    )


async def reschedule_requested(
    tx: Transaction, appointment_id: uuid.UUID, *, starts_at: datetime, clinician_id: str | None
) -> None:
    """Move a booked appointment to another time, with the same clinician unless another is named."""
    row = await appointment_for_update(tx, appointment_id)
    patient = await require_patient(tx.session, row.patient_id)
    clinician_id = clinician_id or row.clinician_id
    kind = AppointmentType(row.appointment_type)
    ends_at = await check_bookable(
        tx.session,
        patient,
        kind,
        clinician_id,
        starts_at,
        rescheduling=appointment_id,
        any_hour=review_may_book_any_hour(row),
    )
    await reschedule(tx, row, Slot(clinician_id, starts_at, ends_at))


async def cancel_requested(tx: Transaction, appointment_id: uuid.UUID, reason: str) -> None:
    await cancel(tx, await appointment_for_update(tx, appointment_id), reason)


async def complete_requested(tx: Transaction, appointment_id: uuid.UUID) -> None:
    await complete(tx, await appointment_for_update(tx, appointment_id))


async def no_show_requested(tx: Transaction, appointment_id: uuid.UUID) -> None:
    await no_show(tx, await appointment_for_update(tx, appointment_id))
