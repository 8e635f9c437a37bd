"""Dosing's HTTP request and response models, with their bounds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from carecoord_contracts.common import ActorId, DiagnosisCodes, Indication, Milligrams, ShortCode

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
    transitions: list[Transition]
    proposals: list[Proposal]


class SessionDecision(BaseModel):
    appointment_id: uuid.UUID
    authorised: bool
    reason: str | None = Field(description="Why not: plan_paused, plan_not_active, no_approved_dose, …")
    authorisation_id: uuid.UUID | None
    dose_mg: int | None
