"""HTTP API: clinicians and their availability, open slots, and appointments through their life.

Times go in and out as ISO 8601 with an offset and are stored in UTC; each
appointment is also shown in the patient's and the clinician's local time.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state; every patient check is audited):

| route                                               | patient | clinician             | operator | service |
|-----------------------------------------------------|---------|-----------------------|----------|---------|
| PUT /clinicians/{id}                                | -       | own record (1)        | -        | any     |
| PUT /clinicians/{id}/availability                   | -       | own record            | -        | any     |
| POST/GET/DELETE /clinicians/{id}/exceptions         | -       | own record            | -        | any     |
| GET /clinicians, GET /clinicians/{id}               | yes     | yes                   | yes      | yes     |
| GET /patients/{id}/open-slots                       | own     | licensed              | -        | any     |
| POST /appointments (book)                           | own     | licensed              | -        | any     |
| POST /appointments/{id}/reschedule, /cancel         | own     | licensed              | -        | any     |
| POST /appointments/{id}/complete, /no-show          | -       | licensed, its own (2) | -        | any     |
| GET /appointments/{id}, /patients/{id}/appointments | own     | licensed              | -        | any     |
| GET /patients/{id}/received-events (journal_router) | -       | licensed              | yes (3)  | any     |

The clinician directory (who practises, their licences, their weekly hours) is
not patient data: patients need it to choose a clinician, operators to run the
system, so every role reads it. A clinician's time off (exceptions) is theirs:
only they and a service see it. (1) A clinician cannot claim a licence the
identity provider does not vouch for: the body's licensed_states must be among
the token's. Patients book, move and cancel their own appointments in their own
name. (2) Whether a session took place (completed, no-show) is the clinician's
call: only the clinician the appointment is with, or a service, records it.
(3) Which events arrived is the system's own bookkeeping. Changes to a
clinician's record are audited too, though they are not patient data.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, status
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_shared.auth import Access, allow
from carecoord_shared.auth import Role as Caller
from carecoord_shared.contracts.common import US_STATES, ActorId, AppointmentType, ShortCode
from carecoord_shared.errors import Forbidden, NotFound
from carecoord_shared.service import UowDep

from . import booking
from .availability import MINUTES_PER_DAY
from .models import appointments, availability_exceptions, clinicians, patients, weekly_availability
from .rules import Role

router = APIRouter(prefix="/v1")

# Access as each kind of route needs it (see the table above).
Anyone = Annotated[Access, allow(Caller.PATIENT, Caller.CLINICIAN, Caller.OPERATOR, Caller.SERVICE)]
ClinicianOrService = Annotated[Access, allow(Caller.CLINICIAN, Caller.SERVICE)]
PatientCare = Annotated[Access, allow(Caller.PATIENT, Caller.CLINICIAN, Caller.SERVICE)]


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("not an IANA time zone (e.g. America/New_York)") from None
    return name


def _state(code: str) -> str:
    if code not in US_STATES:
        raise ValueError("not a USPS state code")
    return code


TimeZone = Annotated[str, Field(min_length=3, max_length=64, examples=["America/New_York"]), AfterValidator(_zone)]
State = Annotated[str, Field(pattern=r"^[A-Z]{2}$"), AfterValidator(_state)]
WallTime = Annotated[
    str,
    Field(
        pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$", description="local wall time HH:MM; 24:00 is the end of the day"
    ),
]


def _minutes(wall: str) -> int:
    hours, minutes = wall.split(":")
    return int(hours) * 60 + int(minutes)


def _wall(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")]
    start: WallTime
    end: WallTime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if not 0 <= _minutes(self.start) < _minutes(self.end) <= MINUTES_PER_DAY:
            raise ValueError("a window's start comes before its end")
        return self


Windows = Annotated[list[Window], Field(max_length=100)]


class ClinicianIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    time_zone: TimeZone
    licensed_states: Annotated[list[State], Field(min_length=1, max_length=51)]
    weekly_availability: Windows = []
    active: bool = True


class Clinician(BaseModel):
    clinician_id: str
    role: Role
    time_zone: str
    licensed_states: list[str]
    weekly_availability: list[Window]
    active: bool


class ExceptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: ShortCode = "time_off"

    @model_validator(mode="after")
    def _ordered(self) -> ExceptionIn:
        if self.starts_at >= self.ends_at:
            raise ValueError("an exception starts before it ends")
        return self


class AvailabilityException(ExceptionIn):
    exception_id: uuid.UUID
    clinician_id: str


class Slot(BaseModel):
    clinician_id: str
    starts_at: datetime
    ends_at: datetime
    starts_at_patient_local: datetime
    starts_at_clinician_local: datetime


class BookingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    clinician_id: ActorId
    appointment_type: AppointmentType
    starts_at: AwareDatetime


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    clinician_id: ActorId | None = Field(default=None, description="another clinician; the same one when absent")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ShortCode = "patient_request"


class Appointment(BaseModel):
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    clinician_id: str
    appointment_type: AppointmentType
    status: str
    starts_at: datetime
    ends_at: datetime
    starts_at_patient_local: datetime | None
    starts_at_clinician_local: datetime
    plan_id: uuid.UUID | None
    review_id: uuid.UUID | None
    review_priority: str | None = None
    course_session: int | None
    cancel_reason: str | None


# --- clinicians -------------------------------------------------------------

clinicians_tag = ["clinicians"]


@router.put(
    "/clinicians/{clinician_id}",
    response_model=Clinician,
    tags=clinicians_tag,
    summary="Create or replace a clinician with their weekly availability",
)
async def put_clinician(clinician_id: ActorId, body: ClinicianIn, uow: UowDep, access: ClinicianOrService) -> Any:
    unvouched = set(body.licensed_states) - access.principal.licensed_states
    if access.principal.role is Caller.CLINICIAN and unvouched:
        raise Forbidden(f"the token does not vouch for a licence in {', '.join(sorted(unvouched))}")
    await _manage(access, clinician_id, "replace", "clinician")
    values = body.model_dump(exclude={"weekly_availability"})
    async with uow.transaction() as tx:
        await tx.session.execute(
            pg_insert(clinicians)
            .values(clinician_id=clinician_id, **values)
            .on_conflict_do_update(
                index_elements=[clinicians.c.clinician_id], set_={**values, "updated_at": booking.now()}
            )
        )
        await _replace_windows(tx.session, clinician_id, body.weekly_availability)
    return await _read_clinician(uow, clinician_id)


@router.put(
    "/clinicians/{clinician_id}/availability",
    response_model=Clinician,
    tags=clinicians_tag,
    summary="Replace a clinician's weekly availability (their local wall time)",
)
async def put_availability(clinician_id: ActorId, body: Windows, uow: UowDep, access: ClinicianOrService) -> Any:
    await _manage(access, clinician_id, "replace", "availability")
    async with uow.transaction() as tx:
        await _require_clinician(tx.session, clinician_id)
        await _replace_windows(tx.session, clinician_id, body)
    return await _read_clinician(uow, clinician_id)


@router.get(
    "/clinicians/{clinician_id}",
    response_model=Clinician,
    tags=clinicians_tag,
    summary="A clinician and their weekly availability",
)
async def get_clinician(clinician_id: ActorId, uow: UowDep, _access: Anyone) -> Any:
    return await _read_clinician(uow, clinician_id)


@router.get(
    "/clinicians",
    response_model=list[Clinician],
    tags=clinicians_tag,
    summary="Clinicians, optionally those licensed in a state or of a role",
)
async def list_clinicians(uow: UowDep, _access: Anyone, state: State | None = None, role: Role | None = None) -> Any:
    query = select(clinicians.c.clinician_id).order_by(clinicians.c.clinician_id).limit(500)
    if state:
        query = query.where(clinicians.c.licensed_states.any(state))
    if role:
        query = query.where(clinicians.c.role == role.value)
    async with uow.sessions() as session:
        ids = list((await session.execute(query)).scalars())
    return [await _read_clinician(uow, cid) for cid in ids]


@router.post(
    "/clinicians/{clinician_id}/exceptions",
    status_code=status.HTTP_201_CREATED,
    response_model=AvailabilityException,
    tags=clinicians_tag,
    summary="Block a period (time off): no appointment is offered in it",
)
async def add_exception(clinician_id: ActorId, body: ExceptionIn, uow: UowDep, access: ClinicianOrService) -> Any:
    await _manage(access, clinician_id, "add", "availability-exception")
    exception_id = uuid.uuid4()
    async with uow.transaction() as tx:
        await _require_clinician(tx.session, clinician_id)
        await tx.session.execute(
            insert(availability_exceptions).values(
                exception_id=exception_id, clinician_id=clinician_id, **body.model_dump()
            )
        )
    return {"exception_id": exception_id, "clinician_id": clinician_id, **body.model_dump()}


@router.get(
    "/clinicians/{clinician_id}/exceptions",
    response_model=list[AvailabilityException],
    tags=clinicians_tag,
    summary="A clinician's blocked periods",
)
async def list_exceptions(clinician_id: ActorId, uow: UowDep, access: ClinicianOrService) -> Any:
    await _manage(access, clinician_id, "read", "availability-exception")
    async with uow.sessions() as session:
        rows = await session.execute(
            select(availability_exceptions)
            .where(availability_exceptions.c.clinician_id == clinician_id)
            .order_by(availability_exceptions.c.starts_at)
        )
        return [r._asdict() for r in rows]


@router.delete(
    "/clinicians/{clinician_id}/exceptions/{exception_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=clinicians_tag,
    summary="Remove a blocked period",
)
async def remove_exception(
    clinician_id: ActorId, exception_id: uuid.UUID, uow: UowDep, access: ClinicianOrService
) -> None:
    await _manage(access, clinician_id, "remove", "availability-exception", exception_id)
    async with uow.transaction() as tx:
        result = await tx.session.execute(
            delete(availability_exceptions).where(
                availability_exceptions.c.clinician_id == clinician_id,
                availability_exceptions.c.exception_id == exception_id,
            )
        )
        if result.rowcount == 0:
            raise NotFound(f"no exception {exception_id} for clinician {clinician_id}")


async def _manage(access: Access, clinician_id: str, action: str, resource: str, resource_id: object = None) -> None:
    """A clinician manages their own record only; a service any (recorded, though it is not patient data)."""
    access.acting_clinician(clinician_id)
    await access.record(action, resource, resource_id or clinician_id)


async def _replace_windows(session: Any, clinician_id: str, windows: list[Window]) -> None:
    await session.execute(delete(weekly_availability).where(weekly_availability.c.clinician_id == clinician_id))
    if windows:
        await session.execute(
            insert(weekly_availability),
            [
                {
                    "clinician_id": clinician_id,
                    "weekday": w.weekday,
                    "start_minute": _minutes(w.start),
                    "end_minute": _minutes(w.end),
                }
                for w in windows
            ],
        )


async def _require_clinician(session: Any, clinician_id: str) -> None:
    if (
        await session.execute(select(clinicians.c.clinician_id).where(clinicians.c.clinician_id == clinician_id))
    ).first() is None:
        raise NotFound(f"no clinician {clinician_id}")


async def _read_clinician(uow: UowDep, clinician_id: str) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (await session.execute(select(clinicians).where(clinicians.c.clinician_id == clinician_id))).first()
        if row is None:
            raise NotFound(f"no clinician {clinician_id}")
        windows = await session.execute(
            select(weekly_availability)
            .where(weekly_availability.c.clinician_id == clinician_id)
            .order_by(weekly_availability.c.weekday, weekly_availability.c.start_minute)
        )
        return {
            **row._asdict(),
            "weekly_availability": [
                {"weekday": w.weekday, "start": _wall(w.start_minute), "end": _wall(w.end_minute)} for w in windows
            ],
        }


# --- slots and appointments -------------------------------------------------

appointments_tag = ["appointments"]


@router.get(
    "/patients/{patient_id}/open-slots",
    response_model=list[Slot],
    tags=appointments_tag,
    summary="The earliest open slots for a patient, with clinicians licensed in the patient's state",
)
async def open_slots(
    patient_id: uuid.UUID,
    appointment_type: AppointmentType,
    uow: UowDep,
    access: PatientCare,
    not_before: AwareDatetime | None = None,
    days: Annotated[int, Query(ge=1, le=60)] = 14,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    clinician_id: ActorId | None = None,
) -> Any:
    await access.patient(patient_id, "read", "open-slots")
    start = max(not_before or booking.now(), booking.now())
    async with uow.sessions() as session:
        patient = await booking.require_patient(session, patient_id)
        slots = await booking.open_slots(
            session,
            patient,
            appointment_type,
            not_before=start,
            not_after=start + timedelta(days=days),
            limit=limit,
            clinician_id=clinician_id,
        )
        zones = await _clinician_zones(session, {s.clinician_id for s in slots})
    return [
        {
            **s.__dict__,
            "starts_at_patient_local": s.starts_at.astimezone(patient.tz),
            "starts_at_clinician_local": s.starts_at.astimezone(zones[s.clinician_id]),
        }
        for s in slots
    ]


@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=Appointment,
    tags=appointments_tag,
    summary="Book an appointment (409 when the slot is taken or not offered)",
)
async def book_appointment(body: BookingIn, uow: UowDep, access: PatientCare) -> Any:
    await access.patient(body.patient_id, "book", "appointment")
    async with uow.transaction() as tx:
        patient = await booking.require_patient(tx.session, body.patient_id)
        ends_at = await booking.check_bookable(
            tx.session, patient, body.appointment_type, body.clinician_id, body.starts_at
        )
        appointment_id = await booking.book(
            tx,
            patient_id=patient.patient_id,
            slot=booking.Slot(body.clinician_id, body.starts_at, ends_at),
            appointment_type=body.appointment_type,
        )
    return await _read_appointment(uow, appointment_id)


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response_model=Appointment,
    tags=appointments_tag,
    summary="Move a booked appointment to another time (and optionally clinician)",
)
async def reschedule_appointment(
    appointment_id: uuid.UUID, body: RescheduleIn, uow: UowDep, access: PatientCare
) -> Any:
    await _check_appointment(uow, access, appointment_id, "reschedule")
    async with uow.transaction() as tx:
        row = await booking.appointment_for_update(tx, appointment_id)
        patient = await booking.require_patient(tx.session, row.patient_id)
        clinician_id = body.clinician_id or row.clinician_id
        kind = AppointmentType(row.appointment_type)
        ends_at = await booking.check_bookable(
            tx.session,
            patient,
            kind,
            clinician_id,
            body.starts_at,
            rescheduling=appointment_id,
            any_hour=booking.review_may_book_any_hour(row),
        )
        await booking.reschedule(tx, row, booking.Slot(clinician_id, body.starts_at, ends_at))
    return await _read_appointment(uow, appointment_id)


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=Appointment,
    tags=appointments_tag,
    summary="Cancel a booked appointment, with a reason code",
)
async def cancel_appointment(appointment_id: uuid.UUID, body: CancelIn, uow: UowDep, access: PatientCare) -> Any:
    await _check_appointment(uow, access, appointment_id, "cancel")
    async with uow.transaction() as tx:
        await booking.cancel(tx, await booking.appointment_for_update(tx, appointment_id), body.reason)
    return await _read_appointment(uow, appointment_id)


@router.post(
    "/appointments/{appointment_id}/complete",
    response_model=Appointment,
    tags=appointments_tag,
    summary="Mark an appointment that has started as completed",
)
async def complete_appointment(appointment_id: uuid.UUID, uow: UowDep, access: ClinicianOrService) -> Any:
    await _check_appointment(uow, access, appointment_id, "complete", held_by_caller=True)
    async with uow.transaction() as tx:
        await booking.complete(tx, await booking.appointment_for_update(tx, appointment_id))
    return await _read_appointment(uow, appointment_id)


@router.post(
    "/appointments/{appointment_id}/no-show",
    response_model=Appointment,
    tags=appointments_tag,
    summary="Mark an appointment that has started as a no-show",
)
async def no_show_appointment(appointment_id: uuid.UUID, uow: UowDep, access: ClinicianOrService) -> Any:
    await _check_appointment(uow, access, appointment_id, "no-show", held_by_caller=True)
    async with uow.transaction() as tx:
        await booking.no_show(tx, await booking.appointment_for_update(tx, appointment_id))
    return await _read_appointment(uow, appointment_id)


@router.get(
    "/appointments/{appointment_id}", response_model=Appointment, tags=appointments_tag, summary="One appointment"
)
async def get_appointment(appointment_id: uuid.UUID, uow: UowDep, access: PatientCare) -> Any:
    appointment = await _read_appointment(uow, appointment_id)
    await access.patient(appointment["patient_id"], "read", "appointment", appointment_id)
    return appointment


@router.get(
    "/patients/{patient_id}/appointments",
    response_model=list[Appointment],
    tags=appointments_tag,
    summary="A patient's schedule: upcoming booked appointments, or every one with include_all",
)
async def patient_schedule(patient_id: uuid.UUID, uow: UowDep, access: PatientCare, include_all: bool = False) -> Any:
    await access.patient(patient_id, "read", "appointments")
    query = (
        _appointment_query()
        .where(appointments.c.patient_id == patient_id)
        .order_by(appointments.c.starts_at)
        .limit(500)
    )
    if not include_all:
        query = query.where(appointments.c.status == "booked", appointments.c.ends_at > booking.now())
    async with uow.sessions() as session:
        return [_present(r) for r in await session.execute(query)]


async def _check_appointment(
    uow: UowDep, access: Access, appointment_id: uuid.UUID, action: str, *, held_by_caller: bool = False
) -> None:
    """The caller may ``action`` this appointment (404 when there is none): checked, and audited, before it is locked."""
    async with uow.sessions() as session:
        row = (
            await session.execute(
                select(appointments.c.patient_id, appointments.c.clinician_id).where(
                    appointments.c.appointment_id == appointment_id
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    await access.patient(row.patient_id, action, "appointment", appointment_id)
    if held_by_caller:
        access.acting_clinician(row.clinician_id)


def _appointment_query() -> Any:
    return select(
        appointments, clinicians.c.time_zone.label("clinician_zone"), patients.c.time_zone.label("patient_zone")
    ).select_from(
        appointments.join(clinicians, clinicians.c.clinician_id == appointments.c.clinician_id).outerjoin(
            patients, patients.c.patient_id == appointments.c.patient_id
        )
    )


def _present(row: Any) -> dict[str, Any]:
    values = row._asdict()
    values["starts_at_clinician_local"] = row.starts_at.astimezone(ZoneInfo(row.clinician_zone))
    values["starts_at_patient_local"] = (
        row.starts_at.astimezone(ZoneInfo(row.patient_zone)) if row.patient_zone else None
    )
    return values


async def _read_appointment(uow: UowDep, appointment_id: uuid.UUID) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (
            await session.execute(_appointment_query().where(appointments.c.appointment_id == appointment_id))
        ).first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    return _present(row)


async def _clinician_zones(session: Any, ids: set[str]) -> dict[str, ZoneInfo]:
    if not ids:
        return {}
    rows = await session.execute(
        select(clinicians.c.clinician_id, clinicians.c.time_zone).where(clinicians.c.clinician_id.in_(ids))
    )
    return {r.clinician_id: ZoneInfo(r.time_zone) for r in rows}
