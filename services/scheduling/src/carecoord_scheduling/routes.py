"""HTTP routes: clinicians and their availability, open slots, and appointments through their life.

Each route authorises, calls one use case (clinicians.py, booking.py) or query (queries.py) and
presents the answer; the models and their bounds are in schemas.py.

Who may do what (carecoord_shared.auth; "own" = the token's patient, "licensed" =
a clinician licensed in the patient's state AND related to them: on their care team or
assigned a review of theirs, ADR 0015; every patient check is audited):

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
| GET /fhir/R4/Appointment, /Appointment/{id}         | own     | licensed              | -        | any     |
| GET /patients/{id}/care-team                        | own     | licensed              | yes (3)  | any     |
| PUT /patients/{id}/care-team                        | -       | licensed (4)          | yes (3)  | any     |
| GET /fhir/R4/metadata                               | yes     | yes                   | yes      | yes     |

The clinician directory (who practises, their licences, their weekly hours) is
not patient data: patients need it to choose a clinician, operators to run the
system, so every role reads it. A clinician's time off (exceptions) is theirs:
only they and a service see it. (1) A clinician cannot claim a licence the
identity provider does not vouch for: the body's licensed_states must be among
the token's. Patients book, move and cancel their own appointments in their own
name. (2) Whether a session took place (completed, no-show) is the clinician's
call: only the clinician the appointment is with, or a service, records it.
(3) Which events arrived, and who is on a patient's care team, are the system's own
bookkeeping (operators assign teams). (4) Booking a patient's initial evaluation
(preparation session) makes its clinician their prescriber (therapist); a licensed
clinician booking that visit with themselves takes the patient on, so needs no
relation yet. A change by hand names clinicians from the directory licensed in the
patient's state (422 otherwise) and publishes CareTeamChanged with who changed it. Changes to a
clinician's record are audited too, though they are not patient data. The
FHIR routes (fhir.py, the shared fhir_router) are the reads of
/patients/{id}/appointments and /appointments/{id} again: the same roles and
audit rows ("appointments", "appointment").

The clinician directory and a patient's schedule answer a page at a time (``?limit=&cursor=``,
carecoord_shared.pagination). Open slots are computed, not stored rows, and bounded by their own
``limit``: they answer one list, not a page.

A change's check and audit row run in the change's own transaction
(``Access.transaction``): one commit; a refusal commits its denied row alone, and
a change that then fails (409, 422) still leaves its allowed row.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from carecoord_contracts.common import ActorId, AppointmentType, CareRole
from carecoord_shared.auth import Access
from carecoord_shared.auth import Role as Caller
from carecoord_shared.auth.care import team_basis
from carecoord_shared.errors import Forbidden
from carecoord_shared.http import IDEMPOTENT, PageDep, UowDep, allow
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork
from carecoord_shared.pagination import Page

from . import booking, care_team, clinicians, queries
from .domain.policy import Role
from .schemas import (
    Appointment,
    AvailabilityException,
    BookingIn,
    CancelIn,
    CareTeam,
    CareTeamIn,
    Clinician,
    ClinicianIn,
    ExceptionIn,
    RescheduleIn,
    Slot,
    State,
    Windows,
)

# Access as each kind of route needs it (see the table above).
Anyone = Annotated[Access, allow(Caller.PATIENT, Caller.CLINICIAN, Caller.OPERATOR, Caller.SERVICE)]
ClinicianOrService = Annotated[Access, allow(Caller.CLINICIAN, Caller.SERVICE)]
PatientCare = Annotated[Access, allow(Caller.PATIENT, Caller.CLINICIAN, Caller.SERVICE)]
# Who is on a patient's team is operational (operators assign it); which patient it is, is not theirs to read.
Staff = Annotated[Access, allow(Caller.CLINICIAN, Caller.OPERATOR, Caller.SERVICE)]

clinicians_tag: list[str | Enum] = ["clinicians"]
appointments_tag: list[str | Enum] = ["appointments"]
care_team_tag: list[str | Enum] = ["care team"]


def build_router() -> APIRouter:
    """The scheduling API. Its use cases read the booking policy in force (domain.policy.POLICY) and
    the request's unit of work; there is nothing else to give them."""
    router = APIRouter(prefix="/v1")

    # --- clinicians ---------------------------------------------------------------

    @router.put(
        "/clinicians/{clinician_id}",
        response_model=Clinician,
        tags=clinicians_tag,
        summary="Create or replace a clinician with their weekly availability",
    )
    async def put_clinician(
        clinician_id: ActorId, body: ClinicianIn, uow: UowDep, access: ClinicianOrService
    ) -> dict[str, Any]:
        unvouched = set(body.licensed_states) - access.principal.licensed_states
        if access.principal.role is Caller.CLINICIAN and unvouched:
            raise Forbidden(f"the token does not vouch for a licence in {', '.join(sorted(unvouched))}")
        await _manage(access, clinician_id, "replace", "clinician")
        await clinicians.put_clinician(uow, clinician_id, body)
        return await queries.clinician(uow, clinician_id)

    @router.put(
        "/clinicians/{clinician_id}/availability",
        response_model=Clinician,
        tags=clinicians_tag,
        summary="Replace a clinician's weekly availability (their local wall time)",
    )
    async def put_availability(
        clinician_id: ActorId, body: Windows, uow: UowDep, access: ClinicianOrService
    ) -> dict[str, Any]:
        await _manage(access, clinician_id, "replace", "availability")
        await clinicians.replace_availability(uow, clinician_id, body)
        return await queries.clinician(uow, clinician_id)

    @router.get(
        "/clinicians/{clinician_id}",
        response_model=Clinician,
        tags=clinicians_tag,
        summary="A clinician and their weekly availability",
    )
    async def get_clinician(clinician_id: ActorId, uow: UowDep, _access: Anyone) -> dict[str, Any]:
        return await queries.clinician(uow, clinician_id)

    @router.get(
        "/clinicians",
        response_model=Page[Clinician],
        tags=clinicians_tag,
        summary="Clinicians by id, optionally those licensed in a state or of a role, a page at a time",
    )
    async def list_clinicians(
        uow: UowDep, _access: Anyone, page: PageDep, state: State | None = None, role: Role | None = None
    ) -> dict[str, Any]:
        return await queries.clinician_list(uow, page, state, role)

    @router.post(
        "/clinicians/{clinician_id}/exceptions",
        status_code=status.HTTP_201_CREATED,
        response_model=AvailabilityException,
        tags=clinicians_tag,
        summary="Block a period (time off): no appointment is offered in it",
        dependencies=[IDEMPOTENT],
    )
    async def add_exception(
        clinician_id: ActorId, body: ExceptionIn, uow: UowDep, access: ClinicianOrService
    ) -> dict[str, Any]:
        await _manage(access, clinician_id, "add", "availability-exception")
        exception_id = await clinicians.add_exception(uow, clinician_id, body)
        return {"exception_id": exception_id, "clinician_id": clinician_id, **body.model_dump()}

    @router.get(
        "/clinicians/{clinician_id}/exceptions",
        response_model=list[AvailabilityException],
        tags=clinicians_tag,
        summary="A clinician's blocked periods",
    )
    async def list_exceptions(clinician_id: ActorId, uow: UowDep, access: ClinicianOrService) -> list[dict[str, Any]]:
        await _manage(access, clinician_id, "read", "availability-exception")
        return await queries.exceptions(uow, clinician_id)

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
        await clinicians.remove_exception(uow, clinician_id, exception_id)

    # --- slots and appointments -----------------------------------------------------

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
    ) -> list[dict[str, Any]]:
        await access.patient(patient_id, "read", "open-slots")
        return await queries.open_slots(
            uow, patient_id, appointment_type, not_before=not_before, days=days, limit=limit, clinician_id=clinician_id
        )

    @router.post(
        "/appointments",
        status_code=status.HTTP_201_CREATED,
        response_model=Appointment,
        tags=appointments_tag,
        summary="Book an appointment (409 when the slot is taken or not offered)",
        dependencies=[IDEMPOTENT],
    )
    async def book_appointment(body: BookingIn, uow: UowDep, access: PatientCare) -> dict[str, Any]:
        # A licensed clinician booking the visit that makes them a member (their patient's initial evaluation
        # with themselves) takes the patient on: that booking is the relation (ADR 0015).
        joins = care_team.role_joined_by(body.appointment_type)
        taking_on = joins is not None and body.clinician_id == access.principal.subject
        relation = team_basis(joins) if taking_on and joins is not None else None
        async with access.transaction(uow, body.patient_id, "book", "appointment", relation=relation) as tx:
            appointment_id = await booking.book_requested(
                tx,
                patient_id=body.patient_id,
                clinician_id=body.clinician_id,
                appointment_type=body.appointment_type,
                starts_at=body.starts_at,
            )
        return await queries.appointment(uow, appointment_id)

    @router.post(
        "/appointments/{appointment_id}/reschedule",
        response_model=Appointment,
        tags=appointments_tag,
        summary="Move a booked appointment to another time (and optionally clinician)",
        dependencies=[IDEMPOTENT],
    )
    async def reschedule_appointment(
        appointment_id: uuid.UUID, body: RescheduleIn, uow: UowDep, access: PatientCare
    ) -> dict[str, Any]:
        async with _changing_appointment(uow, access, appointment_id, "reschedule") as tx:
            await booking.reschedule_requested(
                tx, appointment_id, starts_at=body.starts_at, clinician_id=body.clinician_id
            )
        return await queries.appointment(uow, appointment_id)

    @router.post(
        "/appointments/{appointment_id}/cancel",
        response_model=Appointment,
        tags=appointments_tag,
        summary="Cancel a booked appointment, with a reason code",
        dependencies=[IDEMPOTENT],
    )
    async def cancel_appointment(
        appointment_id: uuid.UUID, body: CancelIn, uow: UowDep, access: PatientCare
    ) -> dict[str, Any]:
        async with _changing_appointment(uow, access, appointment_id, "cancel") as tx:
            await booking.cancel_requested(tx, appointment_id, body.reason)
        return await queries.appointment(uow, appointment_id)

    @router.post(
        "/appointments/{appointment_id}/complete",
        response_model=Appointment,
        tags=appointments_tag,
        summary="Mark an appointment that has started as completed",
        dependencies=[IDEMPOTENT],
    )
    async def complete_appointment(
        appointment_id: uuid.UUID, uow: UowDep, access: ClinicianOrService
    ) -> dict[str, Any]:
        async with _changing_appointment(uow, access, appointment_id, "complete", held_by_caller=True) as tx:
            await booking.complete_requested(tx, appointment_id)
        return await queries.appointment(uow, appointment_id)

    @router.post(
        "/appointments/{appointment_id}/no-show",
        response_model=Appointment,
        tags=appointments_tag,
        summary="Mark an appointment that has started as a no-show",
        dependencies=[IDEMPOTENT],
    )
    async def no_show_appointment(appointment_id: uuid.UUID, uow: UowDep, access: ClinicianOrService) -> dict[str, Any]:
        async with _changing_appointment(uow, access, appointment_id, "no-show", held_by_caller=True) as tx:
            await booking.no_show_requested(tx, appointment_id)
        return await queries.appointment(uow, appointment_id)

    @router.get(
        "/appointments/{appointment_id}", response_model=Appointment, tags=appointments_tag, summary="One appointment"
    )
    async def get_appointment(appointment_id: uuid.UUID, uow: UowDep, access: PatientCare) -> dict[str, Any]:
        appointment = await queries.appointment(uow, appointment_id)
        await access.patient(appointment["patient_id"], "read", "appointment", appointment_id)
        return appointment

    @router.get(
        "/patients/{patient_id}/appointments",
        response_model=Page[Appointment],
        tags=appointments_tag,
        summary="A patient's schedule by start, a page at a time: upcoming booked appointments, or every one with "
        "include_all",
    )
    async def patient_schedule(
        patient_id: uuid.UUID, uow: UowDep, access: PatientCare, page: PageDep, include_all: bool = False
    ) -> dict[str, Any]:
        await access.patient(patient_id, "read", "appointments")
        return await queries.schedule_page(uow, patient_id, include_all, page)

    # --- the care team (ADR 0015) ----------------------------------------------------

    @router.get(
        "/patients/{patient_id}/care-team",
        response_model=CareTeam,
        tags=care_team_tag,
        summary="The patient's care team: their prescriber and therapist (null until booked or set)",
    )
    async def get_care_team(patient_id: uuid.UUID, uow: UowDep, access: Anyone) -> dict[str, Any]:
        await access.patient(patient_id, "read", "care-team", operational=True)
        async with uow.sessions() as session:
            team = await care_team.current(session, patient_id)
        return {"patient_id": patient_id, **dataclasses.asdict(team)}

    @router.put(
        "/patients/{patient_id}/care-team",
        response_model=CareTeam,
        tags=care_team_tag,
        summary="Set the patient's prescriber and/or therapist (422 when a clinician is unknown or not licensed "
        "in the patient's state); publishes CareTeamChanged",
        dependencies=[IDEMPOTENT],
    )
    async def put_care_team(patient_id: uuid.UUID, body: CareTeamIn, uow: UowDep, access: Staff) -> dict[str, Any]:
        changes = {CareRole(field.removesuffix("_id")): getattr(body, field) for field in body.model_fields_set}
        async with access.transaction(uow, patient_id, "change", "care-team", operational=True) as tx:
            patient = await booking.require_patient(tx.session, patient_id)
            team = await care_team.change(tx, patient_id, patient.state, changes, access.principal.subject)
        return {"patient_id": patient_id, **dataclasses.asdict(team)}

    return router


async def _manage(access: Access, clinician_id: str, action: str, resource: str, resource_id: object = None) -> None:
    """A clinician manages their own record only; a service any (recorded, though it is not patient data)."""
    access.acting_clinician(clinician_id)
    await access.record(action, resource, resource_id or clinician_id)


@asynccontextmanager
async def _changing_appointment(
    uow: UnitOfWork, access: Access, appointment_id: uuid.UUID, action: str, *, held_by_caller: bool = False
) -> AsyncIterator[Transaction]:
    """The transaction to ``action`` this appointment in, once the caller may (404 when there is none): checked,
    and audited in it, before the use case locks the appointment; with ``held_by_caller``, then only the
    appointment's own clinician (or a service) may (a refusal rolls back; the allowed row is kept)."""
    patient_id, clinician_id = await queries.appointment_parties(uow, appointment_id)
    async with access.transaction(uow, patient_id, action, "appointment", appointment_id) as tx:
        if held_by_caller:
            access.acting_clinician(clinician_id)
        yield tx
