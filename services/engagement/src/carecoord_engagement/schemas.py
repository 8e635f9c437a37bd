"""HTTP request and response models of engagement, with their bounds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from carecoord_contracts.common import ActorId, ShortCode
from carecoord_shared.pagination import Page

from .domain import Kind, OwnerRole

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Task(BaseModel):
    task_id: uuid.UUID
    patient_id: uuid.UUID
    kind: Kind
    subject_id: uuid.UUID = Field(description="The review, claim or dosing appointment the task is about")
    reason: str | None = Field(description="Why, as a code (the escalation's basis and level, the denial's code)")
    owner_id: str | None = Field(description="Who has it; null: the queue of owner_role has it")
    owner_role: OwnerRole
    due_at: datetime
    state: Literal["open", "closed"]
    overdue: bool
    outcome: str | None
    note: str | None = Field(description="The closing note: shown to clinicians and services, not to operators")
    closed_by: str | None
    closed_at: datetime | None
    created_at: datetime


class TaskPage(Page[Task]):
    pass


class CloseTask(BaseModel):
    model_config = STRICT
    # Which outcomes fit which kind is the domain's check (a 422 naming this field).
    outcome: ShortCode = Field(description="How it ended: one of the outcomes of the task's kind (README, Tasks)")
    note: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        default=None, description="Kept in engagement only; never in events, logs or messages."
    )


class Reassign(BaseModel):
    model_config = STRICT
    owner_id: ActorId | None = Field(description="The staff member who has it now; null: back to the queue")
    owner_role: OwnerRole = Field(description="Whose queue it is in: clinician, operator or billing")
