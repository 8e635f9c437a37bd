"""Booking operations: each runs inside the caller's transaction and emits its events.

Shared by the HTTP API and the event handlers, so a booking rule holds
whichever door a booking comes through. The database has the last word on
double booking (the exclusion constraint on appointments): a conflicting
insert fails inside a savepoint and becomes a :class:`SlotTaken`.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.contracts.common import AppointmentType, ReviewPriority
from carecoord_shared.contracts.scheduling import (
    AppointmentBooked,
    AppointmentCancelled,
    AppointmentCompleted,
    AppointmentNoShow,
    AppointmentRescheduled,
)
from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction

from .availability import Interval, WeeklyWindow, candidate_starts, overlaps, windows_between, within_local_day
from .models import appointments, availability_exceptions, clinicians, patients, weekly_availability
from .rules import APPOINTMENT_KINDS, POLICY, AppointmentKind, review_any_hour

log = structlog.get_logger("carecoord.scheduling")


class SlotTaken(RuleViolation):
    """The clinician already has an appointment overlapping the requested time."""


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


@dataclass(frozen=True)
class Slot:
    clinician_id: str
    starts_at: datetime
    ends_at: datetime


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
    found = {
        r.clinician_id: ClinicianSchedule(r.clinician_id, r.role, ZoneInfo(r.time_zone), list(r.licensed_states))
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


def _live_during(start: datetime, end: datetime) -> Any:
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
    """The earliest free slots for this patient, with clinicians licensed in the patient's state.

    ``any_hour`` lifts the patient's-day rule (an urgent review); the clinician's availability always holds."""
    kind = APPOINTMENT_KINDS[appointment_type]
    period = (not_before, not_after)
    patient_taken = await patient_busy(session, patient.patient_id, period)
    streams = [
        _slots_of(c, kind, patient, patient_taken, period, any_hour=any_hour)
        for c in await schedules(session, role=kind.role, state=patient.state, period=period, clinician_id=clinician_id)
    ]
    merged = heapq.merge(*streams, key=lambda s: (s.starts_at, s.clinician_id))
    return [slot for _, slot in zip(range(limit), merged, strict=False)]


def _slots_of(
    c: ClinicianSchedule,
    kind: AppointmentKind,
    patient: Patient,
    patient_taken: list[Interval],
    period: Interval,
    *,
    any_hour: bool = False,
) -> Iterator[Slot]:
    available = windows_between(c.windows, c.tz, *period)
    for start in candidate_starts(
        available,
        c.time_off + c.booked + patient_taken,
        duration=kind.duration,
        step=POLICY.slot_step,
        not_before=period[0],
        not_after=period[1],
    ):
        end = start + kind.duration
        if not any_hour and not _in_patient_day(patient, start, end):
            continue
        yield Slot(c.clinician_id, start, end)


def _wall(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _in_patient_day(patient: Patient, start: datetime, end: datetime) -> bool:
    return within_local_day(start, end, patient.tz, POLICY.patient_day_start_minute, POLICY.patient_day_end_minute)


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
    kind = APPOINTMENT_KINDS[appointment_type]
    ends_at = starts_at + kind.duration
    if starts_at < now():
        raise RuleViolation("an appointment cannot start in the past")
    row = (await session.execute(select(clinicians).where(clinicians.c.clinician_id == clinician_id))).first()
    if row is None:
        raise NotFound(f"no clinician {clinician_id}")
    if not row.active:
        raise RuleViolation(f"clinician {clinician_id} is not taking appointments")
    if row.role != kind.role:
        raise RuleViolation(
            f"a {appointment_type.value} is held by a {kind.role.value}, and {clinician_id} is a {row.role}"
        )
    if patient.state not in row.licensed_states:
        raise RuleViolation(f"clinician {clinician_id} is not licensed in the patient's state ({patient.state})")
    [schedule] = await schedules(
        session, role=row.role, state=patient.state, period=(starts_at, ends_at), clinician_id=clinician_id
    )
    available = [(max(s, starts_at), e) for s, e in windows_between(schedule.windows, schedule.tz, starts_at, ends_at)]
    if available != [(starts_at, ends_at)]:
        raise RuleViolation(
            f"clinician {clinician_id} is not available for the whole of {starts_at.isoformat()} to {ends_at.isoformat()}"
        )
    if any(overlaps(b, (starts_at, ends_at)) for b in schedule.time_off):
        raise RuleViolation(f"clinician {clinician_id} is away during {starts_at.isoformat()} to {ends_at.isoformat()}")
    if not any_hour and not _in_patient_day(patient, starts_at, ends_at):
        raise RuleViolation(
            f"the appointment falls outside the patient's local day ({_wall(POLICY.patient_day_start_minute)} to "
            f"{_wall(POLICY.patient_day_end_minute)} in their time zone)"
        )
    taken = await patient_busy(session, patient.patient_id, (starts_at, ends_at), except_id=rescheduling)
    if taken:
        raise RuleViolation("the patient already has an appointment at that time")
    return ends_at


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


async def appointment_for_update(tx: Transaction, appointment_id: uuid.UUID) -> Any:
    row = (
        await tx.session.execute(
            select(appointments).where(appointments.c.appointment_id == appointment_id).with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    return row


def _require_booked(row: Any, action: str) -> None:
    if row.status != "booked":
        raise RuleViolation(
            f"appointment {row.appointment_id} is {row.status}; only a booked appointment can be {action}"
        )


async def _set(tx: Transaction, appointment_id: uuid.UUID, **values: Any) -> None:
    await tx.session.execute(
        update(appointments).where(appointments.c.appointment_id == appointment_id).values(updated_at=now(), **values)
    )


async def cancel(tx: Transaction, row: Any, reason: str) -> None:
    _require_booked(row, "cancelled")
    await _set(tx, row.appointment_id, status="cancelled", cancel_reason=reason)
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
    _require_booked(row, "rescheduled")
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
    if row.appointment_type != AppointmentType.urgent_review.value or row.review_priority is None:
        return False
    return review_any_hour(ReviewPriority(row.review_priority))


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
    _require_booked(row, f"marked {outcome}")
    if row.starts_at > now():
        raise RuleViolation(f"an appointment that has not started cannot be marked {outcome}")
    await _set(tx, row.appointment_id, status=outcome)
