"""Scheduling's FHIR R4 resources: ``Appointment``, one per appointment (its id the appointment's UUID).

Mapped (pure functions of the rows queries.py reads; carecoord_shared.http.fhir serves them):

- ``status`` from our appointment status, AppointmentStatus (required binding,
  https://hl7.org/fhir/R4/codesystem-appointmentstatus.html): booked -> booked, completed -> fulfilled,
  cancelled -> cancelled, no_show -> noshow. Those four are every status scheduling gives an appointment
  (booking.py; a reschedule moves a booked appointment and leaves it booked).
- ``start``/``end`` (instants with their offset, UTC as stored), ``minutesDuration``, ``created``.
- ``appointmentType``: our appointment type as a local coding (``<CODE_SYSTEM_BASE>/appointment-type``),
  with the HL7 v2 table 0276 code the binding prefers where one means the same
  (follow_up -> FOLLOWUP; https://terminology.hl7.org/CodeSystem-v2-0276.html).
- ``cancelationReason`` when cancelled: our reason code, local (``<CODE_SYSTEM_BASE>/appointment-cancel-reason``:
  patient_request, treatment_hold, plan_discontinued, eligibility_withdrawn, or the caller's own snake_case code).
- ``participant``: the patient (``Patient/<id>``, served by intake) and the clinician, each required and
  accepted (the booking is made in their name and within their offered hours; neither confirms it further).
  The clinician is ``Practitioner/<clinician_id>``, a literal reference to a Practitioner no service serves
  (there is no contained one); we hold no clinician name, so there is no display. A clinician id that is
  not a FHIR id (``_`` or ``:`` are allowed in ours) is given as an identifier instead.

Search: ``patient`` (required), ``status`` (AppointmentStatus codes, comma-separated: any of them) and ``date``
on ``start`` with the prefixes ge and le (a date, taken as the UTC day, or a dateTime with its offset; at
most one of each). Over the patient's first 500 appointments by start (queries.FHIR_SEARCH_MAX), those
GET /v1/patients/{id}/appointments with include_all pages through.

Left out: ``serviceType``/``specialty`` (appointmentType says what the session is), the plan/review the
appointment belongs to (R4's basedOn is a ServiceRequest, which nobody serves), the patient's and the
clinician's local times (a client converts the instant), ``rebooked_as`` and the booking rule version.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from starlette.datastructures import QueryParams

from carecoord_shared.auth import Principal, Role
from carecoord_shared.http.fhir import (
    CODE_SYSTEM_BASE,
    ID_PATTERN,
    FhirResource,
    coding,
    instant,
    invalid,
    reference,
    uuid_id,
)
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import queries

APPOINTMENT_TYPE_SYSTEM = f"{CODE_SYSTEM_BASE}/appointment-type"
CANCEL_REASON_SYSTEM = f"{CODE_SYSTEM_BASE}/appointment-cancel-reason"
CLINICIAN_ID_SYSTEM = "https://carecoord.example/fhir/NamingSystem/clinician-id"
# https://terminology.hl7.org/CodeSystem-v2-0276.html (the preferred binding of R4 Appointment.appointmentType)
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"

# https://hl7.org/fhir/R4/codesystem-appointmentstatus.html
STATUS = {
    "booked": "booked",
    "completed": "fulfilled",  # "the planning stages of the appointment are now complete"
    "cancelled": "cancelled",
    "no_show": "noshow",
}
# The codes of the AppointmentStatus value set: a search may name any (ours produce four of them).
FHIR_STATUSES = frozenset(
    {
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    }
)

TYPE_DISPLAY = {
    "initial_evaluation": "Initial evaluation",
    "preparation": "Preparation session",
    "dosing_session": "Dosing session",
    "integration": "Integration session",
    "follow_up": "Follow-up",
    "urgent_review": "Urgent review",
}
# Only where the v2 code means the same thing: an urgent review is not an emergency appointment.
TYPE_V2_0276 = {"follow_up": ("FOLLOWUP", "A follow up visit from a previous appointment")}

_FHIR_ID = re.compile(ID_PATTERN)


def fhir_status(status: str) -> str:
    """Our appointment status as AppointmentStatus.

    A status scheduling does not give (there is none today) raises: guessing "booked" for it would
    tell a client a slot is held that may not be."""
    try:
        return STATUS[status]
    except KeyError:
        raise ValueError(f"no FHIR AppointmentStatus for appointment status {status!r}") from None


def appointment_type(kind: str) -> dict[str, Any]:
    codings = [coding(APPOINTMENT_TYPE_SYSTEM, kind, TYPE_DISPLAY.get(kind))]
    if kind in TYPE_V2_0276:
        codings.append(coding(V2_0276, *TYPE_V2_0276[kind]))
    return {"coding": codings, "text": TYPE_DISPLAY.get(kind, kind)}


def practitioner(clinician_id: str) -> dict[str, Any]:
    """The clinician: a literal reference when their id is a FHIR id, otherwise by identifier."""
    if _FHIR_ID.match(clinician_id):
        return reference("Practitioner", clinician_id)
    return {"type": "Practitioner", "identifier": {"system": CLINICIAN_ID_SYSTEM, "value": clinician_id}}


def _participant(actor: dict[str, Any]) -> dict[str, Any]:
    return {"actor": actor, "required": "required", "status": "accepted"}


def appointment_resource(row: Mapping[str, Any]) -> dict[str, Any]:
    """One appointment (queries.appointment's dict) as a FHIR R4 Appointment."""
    starts_at: datetime = row["starts_at"]
    ends_at: datetime = row["ends_at"]
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(row["appointment_id"]),
        "status": fhir_status(row["status"]),
    }
    if row["status"] == "cancelled" and row.get("cancel_reason"):
        resource["cancelationReason"] = {
            "coding": [coding(CANCEL_REASON_SYSTEM, row["cancel_reason"])],
            "text": row["cancel_reason"].replace("_", " "),
        }
    resource |= {
        "appointmentType": appointment_type(row["appointment_type"]),
        "start": instant(starts_at),
        "end": instant(ends_at),
        "minutesDuration": int((ends_at - starts_at).total_seconds() // 60),
    }
    if row.get("created_at") is not None:
        resource["created"] = instant(row["created_at"])
    resource["participant"] = [
        _participant(reference("Patient", row["patient_id"])),
        _participant(practitioner(row["clinician_id"])),
    ]
    return resource


# --- search parameters beyond patient ---------------------------------------------------------


def _bound(value: str) -> tuple[str, datetime]:
    """``ge<when>`` or ``le<when>``: the prefix and the instant it compares ``start`` with (a date is its UTC day:
    ge from its first instant, le up to its last)."""
    prefix, when = value[:2], value[2:]
    if prefix not in ("ge", "le"):
        raise invalid("date", "must be ge<date> or le<date> (the prefixes ge and le are supported)")
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", when):
            day = datetime.combine(date.fromisoformat(when), time(), UTC)
            return prefix, day if prefix == "ge" else day + timedelta(days=1) - timedelta(microseconds=1)
        moment = datetime.fromisoformat(when)
    except ValueError:
        raise invalid("date", "must be a date (YYYY-MM-DD) or a dateTime with its offset") from None
    if moment.tzinfo is None:
        raise invalid("date", "a dateTime needs its offset (e.g. 2026-01-05T09:00:00+00:00)")
    return prefix, moment


def appointment_filter(
    statuses: list[str], dates: list[str]
) -> tuple[Callable[[dict[str, Any]], bool], list[tuple[str, str]]]:
    """The ``status`` and ``date`` parameters as a predicate on mapped Appointments (or a 422 naming the bad one)."""
    wanted: set[str] = set()
    for value in statuses:
        codes = {code.strip() for code in value.split(",") if code.strip()}
        if not codes or not codes <= FHIR_STATUSES:
            raise invalid("status", "must be AppointmentStatus codes, comma-separated")
        wanted |= codes
    bounds = dict(_bound(value.strip()) for value in dates)
    if len(bounds) != len(dates):
        raise invalid("date", "at most one ge and one le")

    def keep(resource: dict[str, Any]) -> bool:
        start = datetime.fromisoformat(resource["start"])
        return (
            (not wanted or resource["status"] in wanted)
            and ("ge" not in bounds or start >= bounds["ge"])
            and ("le" not in bounds or start <= bounds["le"])
        )

    return keep, [("status", v) for v in statuses] + [("date", v) for v in dates]


def _narrow(params: QueryParams) -> tuple[Callable[[dict[str, Any]], bool], list[tuple[str, str]]]:
    return appointment_filter(params.getlist("status"), params.getlist("date"))


# --- reads --------------------------------------------------------------------------------------


async def _owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
    patient_id, _clinician = await queries.appointment_parties(uow, uuid_id(resource_id, "appointment"))
    return patient_id


async def _read(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
    return appointment_resource(await queries.appointment(uow, uuid_id(resource_id, "appointment")))


async def _search(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
    return [appointment_resource(row) for row in await queries.patient_schedule(uow, patient_id, include_all=True)]


# The roles and audit rows of GET /v1/appointments/{id} ("appointment") and
# GET /v1/patients/{id}/appointments ("appointments"), routes.py.
RESOURCES = [
    FhirResource(
        type="Appointment",
        audit_resource="appointment",
        search_audit_resource="appointments",
        owner=_owner,
        read=_read,
        search=_search,
        roles=frozenset({Role.PATIENT, Role.CLINICIAN, Role.SERVICE}),
        search_params=(
            ("patient", "reference", "The patient (id or Patient/<id>); required"),
            ("status", "token", "AppointmentStatus codes, comma-separated"),
            ("date", "date", "The start: ge<date|dateTime> and/or le<date|dateTime> (a date is its UTC day)"),
        ),
        narrow=_narrow,
    )
]
