"""Safety's HTTP request and response models, with their bounds.

Request bodies extend the event contracts they become, so HTTP and Kafka
inputs are validated by the same rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from carecoord_contracts.common import ActorId, Milligrams, PastTimestamp, ReviewDecision, StateCode
from carecoord_contracts.patient_app import MoodCheckInSubmitted, SideEffectReportSubmitted, VitalsSubmitted
from carecoord_shared.pagination import Page

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
# A shift or an absence: longer ones are entered as several (a typo of a year is refused, not kept).
MAX_PERIOD = timedelta(days=31)
CLIENT_ID = "Client-generated id; resubmitting the same id returns the first outcome instead of recording twice."
# The bodies make the contract's required id (and a check-in's answered_at) optional: the route fills in a new
# id (and now). Overriding a required field with an optional one is what each `type: ignore[assignment]` is for.


class SideEffectReportIn(SideEffectReportSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    report_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]


class VitalsIn(VitalsSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    reading_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]


class MoodCheckInIn(MoodCheckInSubmitted):
    model_config = STRICT
    patient_id: uuid.UUID
    checkin_id: uuid.UUID | None = Field(default=None, description=CLIENT_ID)  # type: ignore[assignment]
    answered_at: PastTimestamp | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def some_instrument(self) -> MoodCheckInIn:
        if self.phq9_items is None and self.pcl5_items is None and self.gad7_items is None:
            raise ValueError("a check-in needs phq9_items, pcl5_items and/or gad7_items")
        return self


class OutcomeOut(BaseModel):
    id: uuid.UUID
    escalated: bool
    rule_version: str
    review_id: uuid.UUID | None
    review_ids: list[uuid.UUID]
    hold_requested: bool
    out_of_limits: bool
    advice: list[str] = Field(
        description="Coded guidance for the patient the app shows with the answer: seek_emergency_care "
        "(a red-flag symptom of the blood-pressure rule, a life-threatening report, a reading at or above 180/110)."
    )


class ReportOutcomeOut(OutcomeOut):
    report_id: uuid.UUID
    unknown_symptoms: list[str] = Field(
        description="Codes of this report the rules do not know (GET /v1/rules/symptoms): recorded, and a clinician will look."
    )


class SymptomOut(BaseModel):
    code: str
    label: str
    red_flag: bool = Field(description="Escalates at any grade: an urgent clinician review and a treatment hold.")
    advice: list[str] = Field(description="Guidance a report of this symptom brings, e.g. seek_emergency_care.")


class SymptomVocabulary(BaseModel):
    rule_version: str
    symptoms: list[SymptomOut]
    unknown_codes: str = Field(
        description="What happens to a code outside this list: it is accepted and recorded, and flagged for a clinician."
    )


class SideEffectReportOut(BaseModel):
    report_id: uuid.UUID
    symptoms: list[str]
    grade: int
    onset_minutes_after_dose: int | None
    received_at: datetime
    escalated: bool
    unknown_symptoms: list[str]
    rule_version: str
    advice: list[str]
    note: str | None = Field(
        description="What the patient typed: shown to clinicians only (null for the patient's app and services)."
    )


class VitalsOut(BaseModel):
    reading_id: uuid.UUID
    systolic: int
    diastolic: int
    heart_rate: int | None
    measured_at: datetime
    context: str
    out_of_limits: bool
    received_at: datetime


class MoodCheckInOut(BaseModel):
    checkin_id: uuid.UUID
    phq9_total: int | None
    phq9_item9: int | None
    gad7_total: int | None
    pcl5_total: int | None
    answered_at: datetime


class Review(BaseModel):
    review_id: uuid.UUID
    patient_id: uuid.UUID
    reason: str
    priority: str
    status: str
    due_at: datetime
    triggers: list[str]
    rule_version: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    overdue_at: datetime | None
    decision: str | None
    assignee_id: str | None = Field(description="Who must act on it now (null: nobody could be assigned)")
    assignment_basis: str | None = Field(
        description="prescriber, on_call, clinical_lead, reassigned or unassigned: why it is with them"
    )
    escalation_level: int = Field(
        description="0; 1 once paged to on-call when overdue; 2 once paged to the clinical lead"
    )
    assigned_at: datetime | None


class Worklist(Page[Review]):
    counts: dict[str, int] = Field(
        description="How many reviews of each priority (urgent, high, routine) the whole filtered list holds, "
        "not only this page; a priority with none is absent."
    )


class TriggerOut(BaseModel):
    source_kind: str
    source_id: uuid.UUID
    rule_ids: list[str]
    triggers: list[str]
    rule_version: str
    at: datetime


class ReviewDetail(Review):
    version: int = Field(
        description='raised by every change (a new trigger joining it too); the ETag header is it quoted ("3"): send it in If-Match'
    )
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None = Field(
        description="The resolving clinician's note: shown to clinicians only (null for the patient's app and services)."
    )
    trigger_history: list[TriggerOut]


class Acknowledge(BaseModel):
    model_config = STRICT
    clinician_id: ActorId


class ResolveReview(BaseModel):
    model_config = STRICT
    clinician_id: ActorId
    decision: ReviewDecision
    note: Annotated[str, Field(max_length=4000, description="Kept in safety only; never in events or logs.")] | None = (
        None
    )
    dose_mg: Milligrams | None = Field(
        default=None,
        description="Required with resume_with_dose_change, refused with any other decision: the new dose, within the plan's "
        "per-session maximum and one maximum step from the current dose. The plan resumes with it, approved by this clinician.",
    )

    @model_validator(mode="after")
    def dose_with_its_decision(self) -> ResolveReview:
        if self.decision is ReviewDecision.resume_with_dose_change and self.dose_mg is None:
            raise ValueError("resume_with_dose_change needs dose_mg, the new dose")
        if self.decision is not ReviewDecision.resume_with_dose_change and self.dose_mg is not None:
            raise ValueError(f"dose_mg goes only with resume_with_dose_change, not {self.decision.value}")
        return self


class ShadowRequest(BaseModel):
    model_config = STRICT
    version: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z.\-]+$")]


class Reassign(BaseModel):
    model_config = STRICT
    assignee_id: ActorId = Field(description="The clinician the review is now with (a staff id)")


class _Period(BaseModel):
    model_config = STRICT
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def ends_after_it_starts(self) -> _Period:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > MAX_PERIOD:
            raise ValueError(f"a period is at most {MAX_PERIOD.days} days: add several")
        return self


class ShiftIn(_Period):
    state: StateCode
    role: Literal["on_call", "clinical_lead"]
    clinician_id: ActorId


class ShiftOut(BaseModel):
    shift_id: uuid.UUID
    state: str
    role: str
    clinician_id: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime


class RotaOut(BaseModel):
    state: str
    at: datetime
    on_call: str | None = Field(description="The clinician on call for the state at ``at`` (null: nobody)")
    clinical_lead: str | None = Field(description="The clinical lead for the state at ``at`` (null: nobody)")
    shifts: list[ShiftOut] = Field(description="Shifts not cancelled that end after ``at``, earliest first (up to 200)")


class AbsenceIn(_Period):
    pass


class AbsenceOut(BaseModel):
    absence_id: uuid.UUID
    clinician_id: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
