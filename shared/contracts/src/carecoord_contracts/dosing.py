"""Events produced by the dosing-review service (topics dosing.plans, dosing.sessions and dosing.outcomes)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from .common import (
    ActorId,
    DiagnosisCodes,
    Indication,
    Instrument,
    Milligrams,
    RuleVersion,
    ShortCode,
    ShortCodes,
    Timestamp,
)
from .envelope import Event

HoldIds = Annotated[list[uuid.UUID], Field(max_length=100)]
SessionNumber = Annotated[int, Field(ge=1, le=52)]


class TreatmentPlanCreated(Event):
    event_type = "TreatmentPlanCreated"
    version = 1

    plan_id: uuid.UUID
    starting_dose_mg: Milligrams
    max_dose_mg: Milligrams
    max_step_mg: Milligrams
    planned_sessions: SessionNumber
    cadence_days: (
        Annotated[int, Field(ge=1, le=90, description="days between dosing sessions; absent means weekly")] | None
    ) = None
    indication: Indication | None = Field(
        default=None, description="what the plan treats; absent on plans created before it was recorded"
    )
    diagnosis_codes: DiagnosisCodes | None = Field(
        default=None,
        description="ICD-10-CM codes the clinician chose, principal first, without the dot; absent on older plans",
    )


class TreatmentPlanActivated(Event):
    event_type = "TreatmentPlanActivated"
    version = 1

    plan_id: uuid.UUID


class TreatmentPlanPaused(Event):
    """The plan is on hold: no dosing session is authorised until every hold is released."""

    event_type = "TreatmentPlanPaused"
    version = 1

    plan_id: uuid.UUID
    hold_ids: HoldIds
    reason: ShortCode


class TreatmentPlanResumed(Event):
    event_type = "TreatmentPlanResumed"
    version = 1

    plan_id: uuid.UUID


class TreatmentPlanDiscontinued(Event):
    event_type = "TreatmentPlanDiscontinued"
    version = 1

    plan_id: uuid.UUID
    reason: ShortCode
    decided_by: ActorId


class TreatmentPlanCompleted(Event):
    event_type = "TreatmentPlanCompleted"
    version = 1

    plan_id: uuid.UUID
    sessions_completed: SessionNumber


class DoseProposed(Event):
    """The next session's dose, proposed from the response; effective only once a clinician approves it."""

    event_type = "DoseProposed"
    version = 1

    proposal_id: uuid.UUID
    plan_id: uuid.UUID
    session_number: SessionNumber
    previous_dose_mg: Milligrams
    proposed_dose_mg: Milligrams
    rationale: ShortCodes


class DoseApproved(Event):
    event_type = "DoseApproved"
    version = 1

    proposal_id: uuid.UUID
    plan_id: uuid.UUID
    approved_dose_mg: Milligrams
    approved_by: ActorId
    review_id: uuid.UUID | None = Field(
        default=None,
        description="Set when the dose was approved by resolving a clinician review (resume_with_dose_change).",
    )


class DoseChangeRefused(Event):
    """A review's resume-with-dose-change could not be applied (the dose is outside the plan's limits, or no live plan):
    the plan stays paused, the hold stays open, and safety opens a review for the clinician to decide again."""

    event_type = "DoseChangeRefused"
    version = 1

    plan_id: uuid.UUID | None = None
    hold_id: uuid.UUID
    review_id: uuid.UUID
    requested_dose_mg: Milligrams
    reason: ShortCode


class DosingSessionAuthorised(Event):
    event_type = "DosingSessionAuthorised"
    version = 1

    authorisation_id: uuid.UUID
    plan_id: uuid.UUID
    appointment_id: uuid.UUID
    dose_mg: Milligrams


class DosingSessionRefused(Event):
    """A dosing session may not go ahead; ``reason`` says why (``plan_paused``, ``no_approved_dose``, ``blood_pressure``)."""

    event_type = "DosingSessionRefused"
    version = 1

    appointment_id: uuid.UUID
    plan_id: uuid.UUID | None = None
    reason: ShortCode


class _OutcomeReached(BaseModel):
    """A patient reached an outcome milestone on an instrument, under a version of the outcome definitions
    (dosing's ``outcomes-<version>.toml``): emitted once per patient, instrument, milestone and version."""

    instrument: Instrument
    definition_version: RuleVersion
    baseline_total: Annotated[int, Field(ge=0, le=80)]
    total: Annotated[int, Field(ge=0, le=80, description="the follow-up total that reached it")]
    measured_at: Timestamp = Field(description="when that follow-up was measured")
    first_dose_at: Timestamp = Field(description="the start of the patient's first completed dosing session")
    days_since_first_dose: Annotated[float, Field(ge=0, le=3650)]


class TreatmentResponseReached(Event, _OutcomeReached):
    """A follow-up at least the definition's reduction (>= 50 %) below the intake baseline."""

    event_type = "TreatmentResponseReached"
    version = 1


class RemissionReached(Event, _OutcomeReached):
    """A follow-up below the instrument's remission cut-off (PHQ-9 < 5, GAD-7 < 5, PCL-5 < 33 in 2026.12.0)."""

    event_type = "RemissionReached"
    version = 1
