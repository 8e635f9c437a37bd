"""Events produced by the dosing-review service."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from .common import Milligrams, ShortCode
from .envelope import Event

HoldIds = Annotated[list[uuid.UUID], Field(max_length=100)]


class TreatmentPlanCreated(Event):
    event_type = "TreatmentPlanCreated"
    version = 1

    plan_id: uuid.UUID
    starting_dose_mg: Milligrams
    max_dose_mg: Milligrams
    max_step_mg: Milligrams
    planned_sessions: Annotated[int, Field(ge=1, le=52)]


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
