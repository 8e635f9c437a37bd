"""HTTP request and response models of the scheduling API, with their bounds.

Times go in and out as ISO 8601 with an offset and are stored in UTC; each
appointment is also shown in the patient's and the clinician's local time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from carecoord_contracts.common import US_STATES, ActorId, AppointmentType, ShortCode

from .domain.availability import MINUTES_PER_DAY
from .domain.policy import Role


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


def minutes_of(wall: str) -> int:
    hours, minutes = wall.split(":")
    return int(hours) * 60 + int(minutes)


def wall_of(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


class Window(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: Annotated[int, Field(ge=0, le=6, description="0 = Monday … 6 = Sunday")]
    start: WallTime
    end: WallTime

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if not 0 <= minutes_of(self.start) < minutes_of(self.end) <= MINUTES_PER_DAY:
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


class CareTeamIn(BaseModel):
    """Members to set by hand: a role left out keeps its member, null removes it."""

    model_config = ConfigDict(extra="forbid")

    prescriber_id: ActorId | None = Field(default=None, description="the prescribing clinician; null: nobody")
    therapist_id: ActorId | None = Field(default=None, description="the therapist; null: nobody")

    @model_validator(mode="after")
    def names_a_role(self) -> CareTeamIn:
        if not self.model_fields_set:
            raise ValueError("name prescriber_id, therapist_id or both")
        return self


class CareTeam(BaseModel):
    patient_id: uuid.UUID
    prescriber_id: str | None
    therapist_id: str | None
