"""Events produced by the scheduling service (topic scheduling.appointments)."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime

from .common import ActorId, AppointmentType, ShortCode
from .envelope import Event


class AppointmentBooked(Event):
    event_type = "AppointmentBooked"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    plan_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None


class AppointmentRescheduled(Event):
    event_type = "AppointmentRescheduled"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    previous_starts_at: AwareDatetime


class AppointmentCancelled(Event):
    """Cancelled; ``reason`` is a code such as ``treatment_hold`` (never billed) or ``patient_request``."""

    event_type = "AppointmentCancelled"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    reason: ShortCode
    starts_at: AwareDatetime


class AppointmentCompleted(Event):
    event_type = "AppointmentCompleted"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    started_at: AwareDatetime
    ended_at: AwareDatetime
    video: bool = True
    plan_id: uuid.UUID | None = None


class AppointmentNoShow(Event):
    event_type = "AppointmentNoShow"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    starts_at: AwareDatetime


class ReviewAppointmentUnavailable(Event):
    """No licensed clinician is free before the review's due time: operators must step in."""

    event_type = "ReviewAppointmentUnavailable"
    version = 1

    review_id: uuid.UUID
    due_at: AwareDatetime
    reason: ShortCode
