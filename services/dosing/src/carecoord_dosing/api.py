"""HTTP API for clinicians' UIs: create, activate and read treatment plans."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from carecoord_shared.contracts.common import Milligrams
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import plans
from .models import plan_transitions, treatment_holds, treatment_plans

router = APIRouter(prefix="/v1", tags=["treatment plans"])

ActorId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    clinician_id: ActorId
    starting_dose_mg: Milligrams
    max_dose_mg: Milligrams
    max_step_mg: Milligrams
    planned_sessions: Annotated[int, Field(ge=1, le=52)]


class ClinicianAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clinician_id: ActorId


class Transition(BaseModel):
    from_status: str
    to_status: str
    actor: str
    reason: str
    at: datetime


class Plan(BaseModel):
    plan_id: uuid.UUID
    patient_id: uuid.UUID
    status: str
    starting_dose_mg: int
    max_dose_mg: int
    max_step_mg: int
    planned_sessions: int
    open_hold_ids: list[uuid.UUID]
    transitions: list[Transition]


@router.post("/plans", status_code=status.HTTP_201_CREATED, response_model=Plan)
async def create_plan(body: PlanCreate, uow: UowDep) -> Any:
    async with uow.transaction() as tx:
        plan_id = await plans.create_plan(
            tx,
            patient_id=body.patient_id,
            actor=body.clinician_id,
            starting_dose_mg=body.starting_dose_mg,
            max_dose_mg=body.max_dose_mg,
            max_step_mg=body.max_step_mg,
            planned_sessions=body.planned_sessions,
        )
    return await _read_plan(uow, plan_id)


@router.post("/plans/{plan_id}/activate", response_model=Plan)
async def activate_plan(plan_id: uuid.UUID, body: ClinicianAction, uow: UowDep) -> Any:
    async with uow.transaction() as tx:
        await plans.activate_plan(tx, plan_id, actor=body.clinician_id)
    return await _read_plan(uow, plan_id)


@router.get("/plans/{plan_id}", response_model=Plan)
async def get_plan(plan_id: uuid.UUID, uow: UowDep) -> Any:
    return await _read_plan(uow, plan_id)


@router.get("/patients/{patient_id}/plan", response_model=Plan)
async def get_patient_plan(patient_id: uuid.UUID, uow: UowDep) -> Any:
    async with uow.sessions() as session:
        plan_id = (
            await session.execute(
                select(treatment_plans.c.plan_id)
                .where(treatment_plans.c.patient_id == patient_id)
                .order_by(treatment_plans.c.created_at.desc())
                .limit(1)
            )
        ).scalar()
    if plan_id is None:
        raise NotFound("this patient has no treatment plan")
    return await _read_plan(uow, plan_id)


async def _read_plan(uow: UowDep, plan_id: uuid.UUID) -> dict[str, Any]:
    async with uow.sessions() as session:
        plan = (await session.execute(select(treatment_plans).where(treatment_plans.c.plan_id == plan_id))).first()
        if plan is None:
            raise NotFound(f"no treatment plan {plan_id}")
        holds = await session.execute(
            select(treatment_holds.c.hold_id).where(
                treatment_holds.c.patient_id == plan.patient_id, treatment_holds.c.status == "open"
            )
        )
        transitions = await session.execute(
            select(plan_transitions).where(plan_transitions.c.plan_id == plan_id).order_by(plan_transitions.c.id)
        )
        return {
            **plan._asdict(),
            "open_hold_ids": list(holds.scalars()),
            "transitions": [t._asdict() for t in transitions],
        }
