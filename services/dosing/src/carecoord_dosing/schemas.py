"""Dosing's HTTP request and response models, with their bounds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from carecoord_contracts.common import ActorId, DiagnosisCodes, Indication, Instrument, Milligrams, ShortCode

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class PlanCreate(BaseModel):
    model_config = STRICT

    patient_id: uuid.UUID
    clinician_id: ActorId
    starting_dose_mg: Milligrams
    max_dose_mg: Milligrams
    max_step_mg: Milligrams
    planned_sessions: Annotated[int, Field(ge=1, le=52)]
    cadence_days: Annotated[int, Field(ge=1, le=90, description="days between dosing sessions")] = 7
    indication: Indication = Field(description="what the plan treats; titration measures response on its instrument")
    diagnosis_codes: DiagnosisCodes = Field(
        description="ICD-10-CM codes the clinician chose, principal first (F43.10 or F4310; 1 to 12, each once); claims carry them"
    )


class ClinicianAction(BaseModel):
    model_config = STRICT
    clinician_id: ActorId


class Discontinue(ClinicianAction):
    reason: ShortCode


class Approval(ClinicianAction):
    dose_mg: Milligrams | None = Field(
        default=None,
        description="Approve a different dose than proposed: still within the plan's and the program's caps and one step.",
    )


class SessionRequest(BaseModel):
    model_config = STRICT
    patient_id: uuid.UUID


class Transition(BaseModel):
    from_status: str
    to_status: str
    actor: str
    reason: str
    at: datetime


class Proposal(BaseModel):
    proposal_id: uuid.UUID
    session_number: int
    previous_dose_mg: int
    proposed_dose_mg: int
    rationale: list[str]
    rule_version: str
    status: str
    proposed_at: datetime
    approved_dose_mg: int | None
    approved_by: str | None


class Plan(BaseModel):
    plan_id: uuid.UUID
    patient_id: uuid.UUID
    status: str
    starting_dose_mg: int
    max_dose_mg: int
    max_step_mg: int
    planned_sessions: int
    cadence_days: int
    indication: Indication | None = Field(description="null on plans created before it was recorded")
    diagnosis_codes: list[str] | None = Field(description="without the dot, principal first; null on older plans")
    sessions_completed: int
    approved_dose_mg: int | None
    open_hold_ids: list[uuid.UUID]
    version: int = Field(description='raised by every change; the ETag header is it quoted ("3"): send it in If-Match')
    transitions: list[Transition]
    proposals: list[Proposal]


class SessionDecision(BaseModel):
    appointment_id: uuid.UUID
    authorised: bool
    reason: str | None = Field(description="Why not: plan_paused, plan_not_active, no_approved_dose, …")
    authorisation_id: uuid.UUID | None
    dose_mg: int | None


# --- outcomes (outcomes.py; the definitions: outcomes-<version>.toml) -------------------------------


class FollowUpOut(BaseModel):
    at: datetime
    total: int
    days_since_first_dose: float


class InstrumentOutcomeOut(BaseModel):
    instrument: Instrument
    definition_version: str
    baseline: int | None = Field(description="the intake score (latest at or before the first dose)")
    baseline_at: datetime | None
    latest: int | None = Field(description="the last follow-up after the first dose")
    latest_at: datetime | None
    change_points: int | None
    change_percent: float | None = Field(description="of the baseline; negative is a fall")
    response: bool | None = Field(description="at the latest follow-up; None without baseline or follow-up")
    remission: bool | None
    first_dose_at: datetime | None
    response_at: datetime | None = Field(description="the first follow-up that met the response definition")
    days_to_response: float | None = Field(description="from the first dose to response_at")
    remission_at: datetime | None
    follow_ups: list[FollowUpOut]


class PatientOutcomes(BaseModel):
    patient_id: uuid.UUID
    definition_version: str
    indication: Indication | None
    indication_instrument: Instrument | None
    first_dose_at: datetime | None
    instruments: list[InstrumentOutcomeOut]
    definitions: dict[str, Any]


class FigureOut(BaseModel):
    figure: str
    indication: Indication | None = Field(description="None: all indications")
    value: float | None = Field(description="numerator / denominator, 0-1; None when suppressed or empty")
    numerator: int | None
    denominator: int | None
    definition: str
    cohort: str
    definition_version: str
    suppressed: bool


class CohortOut(BaseModel):
    indication: Indication | None
    enrolled: int = Field(description="patients with a plan for the indication")
    eligible: int = Field(description="enrolled with a baseline on the indication's instrument and a first dose")
    with_follow_up: int
    without_follow_up: int = Field(description="eligible without a follow-up: counted apart, never as improved")
    due_at_4_weeks: int = Field(description="eligible whose improvement window has closed")
    measured_at_4_weeks: int
    not_measured_at_4_weeks: int


class WeekOut(BaseModel):
    indication: Indication
    week: int = Field(description="weeks since the first dose")
    patients: int
    median_total: float | None
    responding: int
    remitted: int


class ProgramOutcomesOut(BaseModel):
    definition_version: str
    as_of: datetime
    scope: str = Field(
        description="whose patients the figures count: every state, or the caller's patients (related to them, in their licensed states)"
    )
    suppressed_below: int | None = Field(description="cells under this many patients are withheld; None: none are")
    figures: list[FigureOut]
    cohorts: list[CohortOut]
    weeks: list[WeekOut]
    definitions: dict[str, Any]
