"""The read side the scheduling routes present: one session per request, one query per list (a page of it)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_contracts.common import AppointmentType
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, page_of, paginate

from . import booking
from .domain.policy import Role
from .models import appointments, availability_exceptions, clinicians, patients, weekly_availability
from .schemas import wall_of

# The clinician directory by clinician id (unique, and a clinician's id is no patient's data).
CLINICIANS_BY_ID = Ordering("clinicians.by-id", (SortKey(clinicians.c.clinician_id),))
# A patient's schedule by start, the appointment id breaking ties so that no row is skipped or repeated.
APPOINTMENTS_BY_START = Ordering(
    "appointments.by-start", (SortKey(appointments.c.starts_at), SortKey(appointments.c.appointment_id))
)
# The FHIR Appointment search reads at most this many of a patient's appointments by start (the Bundle
# pages over them with _offset, carecoord_shared.http.fhir); the /v1 list pages with a cursor instead.
FHIR_SEARCH_MAX = 500

# --- clinicians ---------------------------------------------------------------------


async def clinician(uow: UnitOfWork, clinician_id: str) -> dict[str, Any]:
    """A clinician and their weekly availability (404 when there is none)."""
    async with uow.sessions() as session:
        found = await _clinicians(
            session, select(clinicians.c.clinician_id).where(clinicians.c.clinician_id == clinician_id)
        )
    if not found:
        raise NotFound(f"no clinician {clinician_id}")
    return found[0]


async def clinician_list(uow: UnitOfWork, page: PageRequest, state: str | None, role: Role | None) -> dict[str, Any]:
    """One page of clinicians by id, optionally those licensed in a state or of a role."""
    ids = select(clinicians.c.clinician_id)
    if state:
        ids = ids.where(clinicians.c.licensed_states.any(state))
    if role:
        ids = ids.where(clinicians.c.role == role.value)
    async with uow.sessions() as session:
        found = await _clinicians(session, paginate(ids, CLINICIANS_BY_ID, page))
    return page_of(found, CLINICIANS_BY_ID, page)


async def _clinicians(session: AsyncSession, ids: Select[Any]) -> list[dict[str, Any]]:
    """The clinicians ``ids`` selects, each with their windows, in one query (ordered by clinician id)."""
    chosen = ids.subquery()
    query = (
        select(
            clinicians,
            weekly_availability.c.weekday,
            weekly_availability.c.start_minute,
            weekly_availability.c.end_minute,
        )
        .join(chosen, chosen.c.clinician_id == clinicians.c.clinician_id)
        .outerjoin(weekly_availability, weekly_availability.c.clinician_id == clinicians.c.clinician_id)
        .order_by(clinicians.c.clinician_id, weekly_availability.c.weekday, weekly_availability.c.start_minute)
    )
    found: dict[str, dict[str, Any]] = {}
    for row in await session.execute(query):
        values = row._asdict()
        weekday, start, end = values.pop("weekday"), values.pop("start_minute"), values.pop("end_minute")
        entry = found.setdefault(row.clinician_id, {**values, "weekly_availability": []})
        if weekday is not None:
            entry["weekly_availability"].append({"weekday": weekday, "start": wall_of(start), "end": wall_of(end)})
    return list(found.values())


async def exceptions(uow: UnitOfWork, clinician_id: str) -> list[dict[str, Any]]:
    async with uow.sessions() as session:
        rows = await session.execute(
            select(availability_exceptions)
            .where(availability_exceptions.c.clinician_id == clinician_id)
            .order_by(availability_exceptions.c.starts_at)
        )
        return [r._asdict() for r in rows]


# --- slots and appointments ---------------------------------------------------------


async def open_slots(
    uow: UnitOfWork,
    patient_id: uuid.UUID,
    appointment_type: AppointmentType,
    *,
    not_before: datetime | None,
    days: int,
    limit: int,
    clinician_id: str | None,
) -> list[dict[str, Any]]:
    """The earliest open slots for a patient, each also in the patient's and the clinician's local time."""
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


async def _clinician_zones(session: AsyncSession, ids: set[str]) -> dict[str, ZoneInfo]:
    if not ids:
        return {}
    rows = await session.execute(
        select(clinicians.c.clinician_id, clinicians.c.time_zone).where(clinicians.c.clinician_id.in_(ids))
    )
    return {r.clinician_id: ZoneInfo(r.time_zone) for r in rows}


async def appointment_parties(uow: UnitOfWork, appointment_id: uuid.UUID) -> tuple[uuid.UUID, str]:
    """Whose appointment it is and with whom: (patient id, clinician id); 404 when there is none."""
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
    return row.patient_id, row.clinician_id


async def appointment(uow: UnitOfWork, appointment_id: uuid.UUID) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (
            await session.execute(_appointment_query().where(appointments.c.appointment_id == appointment_id))
        ).first()
    if row is None:
        raise NotFound(f"no appointment {appointment_id}")
    return _present(row)


def _schedule_of(patient_id: uuid.UUID, include_all: bool) -> Select[Any]:
    """Upcoming booked appointments, or every one with include_all."""
    query = _appointment_query().where(appointments.c.patient_id == patient_id)
    if not include_all:
        query = query.where(appointments.c.status == "booked", appointments.c.ends_at > booking.now())
    return query


async def schedule_page(uow: UnitOfWork, patient_id: uuid.UUID, include_all: bool, page: PageRequest) -> dict[str, Any]:
    """One page of a patient's schedule by start: upcoming booked appointments, or every one with include_all."""
    query = paginate(_schedule_of(patient_id, include_all), APPOINTMENTS_BY_START, page)
    async with uow.sessions() as session:
        found = [_present(r) for r in await session.execute(query)]
    return page_of(found, APPOINTMENTS_BY_START, page)


async def patient_schedule(uow: UnitOfWork, patient_id: uuid.UUID, include_all: bool) -> list[dict[str, Any]]:
    """For the FHIR Appointment search (fhir.py): the schedule by start as one list, its first FHIR_SEARCH_MAX."""
    query = _schedule_of(patient_id, include_all).order_by(*APPOINTMENTS_BY_START.order_by()).limit(FHIR_SEARCH_MAX)
    async with uow.sessions() as session:
        return [_present(r) for r in await session.execute(query)]


def _appointment_query() -> Select[Any]:
    return select(
        appointments, clinicians.c.time_zone.label("clinician_zone"), patients.c.time_zone.label("patient_zone")
    ).select_from(
        appointments.join(clinicians, clinicians.c.clinician_id == appointments.c.clinician_id).outerjoin(
            patients, patients.c.patient_id == appointments.c.patient_id
        )
    )


def _present(row: Any) -> dict[str, Any]:
    values: dict[str, Any] = row._asdict()
    values["starts_at_clinician_local"] = row.starts_at.astimezone(ZoneInfo(row.clinician_zone))
    values["starts_at_patient_local"] = (
        row.starts_at.astimezone(ZoneInfo(row.patient_zone)) if row.patient_zone else None
    )
    return values
