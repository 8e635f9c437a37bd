"""Events produced by the scheduling service (topic scheduling.appointments)."""

from __future__ import annotations

import uuid


from .common import Timestamp, ActorId, AppointmentType, ShortCode
from .envelope import Event


class AppointmentBooked(Event):
    event_type = "AppointmentBooked"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    starts_at: Timestamp
    ends_at: Timestamp
    plan_id: uuid.UUID | None = None
    review_id: uuid.UUID | None = None


class AppointmentRescheduled(Event):
    event_type = "AppointmentRescheduled"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    starts_at: Timestamp
    ends_at: Timestamp
    previous_starts_at: Timestamp


class AppointmentCancelled(Event):
    """Cancelled; ``reason`` is a code such as ``treatment_hold`` (never billed) or ``patient_request``."""

    event_type = "AppointmentCancelled"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    reason: ShortCode
    starts_at: Timestamp


class AppointmentCompleted(Event):
    event_type = "AppointmentCompleted"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    clinician_id: ActorId
    started_at: Timestamp
    ended_at: Timestamp
    video: bool = True
    plan_id: uuid.UUID | None = None


class AppointmentNoShow(Event):
    event_type = "AppointmentNoShow"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    starts_at: Timestamp


class ReviewAppointmentUnavailable(Event):
    """No licensed clinician is free before the review's due time: operators must step in."""

    event_type = "ReviewAppointmentUnavailable"
    version = 1

    review_id: uuid.UUID
    due_at: Timestamp
    reason: ShortCode
