"""Events produced by the scheduling service (topics scheduling.appointments, scheduling.care-teams)."""

from __future__ import annotations

import uuid

from pydantic import Field

from .common import ActorId, AppointmentType, ShortCode, Timestamp
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
    new_patient: bool | None = Field(
        default=None,
        description="True when the patient had no completed visit with the practice before this one (billing's new-patient E/M code); None from a producer that did not say",
    )


class AppointmentNoShow(Event):
    event_type = "AppointmentNoShow"
    version = 1

    appointment_id: uuid.UUID
    appointment_type: AppointmentType
    starts_at: Timestamp


class ReviewAppointmentUnavailable(Event):
    """No review visit could be booked: operators must step in. ``reason``: ``patient_location_unknown``,
    ``no_licensed_clinician_free`` (an urgent review: none free before its due time) or
    ``no_licensed_clinician_free_in_patient_day`` (any other review: none in the patient's day within the search horizon)."""

    event_type = "ReviewAppointmentUnavailable"
    version = 1

    review_id: uuid.UUID
    due_at: Timestamp
    reason: ShortCode


class CareTeamChanged(Event):
    """The patient's care team as it is now (both members, not a delta): their prescribing clinician and their
    therapist, either still None until booked. Set by scheduling when the initial evaluation (prescriber) and
    the preparation session (therapist) are booked, and changed by a clinician or an operator through its API.
    Every service keeps the latest: a clinician reaches a patient's data as a member of the care team (or on call,
    or assigned to a review of theirs), not for being licensed in the patient's state alone.

    ``reason``: ``initial_evaluation_booked``, ``preparation_booked`` or ``changed_by_staff``."""

    event_type = "CareTeamChanged"
    version = 1

    prescriber_id: ActorId | None = None
    therapist_id: ActorId | None = None
    reason: ShortCode
    changed_by: ActorId | None = Field(default=None, description="The staff member who changed it by hand.")
