"""HTTP API for clinicians' UIs and the patient app: plans, dose approvals, session authorisation.

Who may call what (carecoord_shared.auth; "licensed" = a clinician licensed in
the patient's state of residence, learnt from PatientRegistered; every
patient check writes an audit row, allowed or denied):

| route                                   | patient  | clinician                | operator | service | audited as                |
|-----------------------------------------|----------|--------------------------|----------|---------|---------------------------|
| POST /plans                             | -        | licensed, in own name    | -        | yes     | create plan               |
| POST /plans/{id}/activate, /discontinue | -        | licensed, in own name    | -        | yes     | activate/discontinue plan |
| GET /plans/{id}                         | own only | licensed                 | -        | yes     | read plan                 |
| GET /patients/{id}/plan                 | own only | licensed                 | -        | yes     | read plan                 |
| POST /dose-proposals/{id}/approve       | -        | licensed, in own name    | -        | yes     | approve dose-proposal     |
| POST /dosing-sessions/{id}/authorise    | -        | licensed                 | -        | yes     | authorise dosing-session  |

Plans, doses and session authorisations are clinical decisions: a patient reads
their plan but decides nothing, and "in own name" means the body's clinician_id
is the token's subject. Authorising a session has no clinician in the body (the
rules decide, the caller asks): the clinician monitoring the session or the
patient app's back end (a service account) asks. Operators reach no patient data
here, so no route admits them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from carecoord_shared.auth import Access, Role, allow, patient_of
from carecoord_shared.contracts.common import ActorId, DiagnosisCodes, Indication, Milligrams, ShortCode
from carecoord_shared.errors import NotFound
from carecoord_shared.service import UowDep

from . import plans
from .domain import TitrationRules
from .models import dose_proposals, plan_transitions, treatment_holds, treatment_plans

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


Readers = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Clinical = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]


async def _plan_patient(uow: UowDep, plan_id: uuid.UUID) -> uuid.UUID:
    query = select(treatment_plans.c.patient_id).where(treatment_plans.c.plan_id == plan_id)
    return await patient_of(uow.sessions, query, f"no treatment plan {plan_id}")


async def _proposal_patient(uow: UowDep, proposal_id: uuid.UUID) -> uuid.UUID:
    query = (
        select(treatment_plans.c.patient_id)
        .join(dose_proposals, dose_proposals.c.plan_id == treatment_plans.c.plan_id)
        .where(dose_proposals.c.proposal_id == proposal_id)
    )
    return await patient_of(uow.sessions, query, f"no dose proposal {proposal_id}")


async def _decide_on_plan(access: Access, uow: UowDep, plan_id: uuid.UUID, clinician_id: str, action: str) -> None:
    access.acting_clinician(clinician_id)
    await access.patient(await _plan_patient(uow, plan_id), action, "plan", plan_id)


def build_router(rules: TitrationRules) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/plans", status_code=status.HTTP_201_CREATED, response_model=Plan, tags=["treatment plans"])
    async def create_plan(body: PlanCreate, uow: UowDep, access: Clinical) -> Any:
        access.acting_clinician(body.clinician_id)
        await access.patient(body.patient_id, "create", "plan")
        async with uow.transaction() as tx:
            plan_id = await plans.create_plan(
                tx,
                patient_id=body.patient_id,
                actor=body.clinician_id,
                rules=rules,
                indication=body.indication,
                diagnosis_codes=body.diagnosis_codes,
                starting_dose_mg=body.starting_dose_mg,
                max_dose_mg=body.max_dose_mg,
                max_step_mg=body.max_step_mg,
                planned_sessions=body.planned_sessions,
                cadence_days=body.cadence_days,
            )
        return await _read_plan(uow, plan_id)

    @router.post(
        "/plans/{plan_id}/activate",
        response_model=Plan,
        tags=["treatment plans"],
        summary="Activate a draft plan; the activating clinician approves the starting dose",
    )
    async def activate_plan(plan_id: uuid.UUID, body: ClinicianAction, uow: UowDep, access: Clinical) -> Any:
        await _decide_on_plan(access, uow, plan_id, body.clinician_id, "activate")
        async with uow.transaction() as tx:
            await plans.activate_plan(tx, plan_id, actor=body.clinician_id, rules=rules)
        return await _read_plan(uow, plan_id)

    @router.post("/plans/{plan_id}/discontinue", response_model=Plan, tags=["treatment plans"])
    async def discontinue_plan(plan_id: uuid.UUID, body: Discontinue, uow: UowDep, access: Clinical) -> Any:
        await _decide_on_plan(access, uow, plan_id, body.clinician_id, "discontinue")
        async with uow.transaction() as tx:
            await plans.discontinue_plan(tx, plan_id, actor=body.clinician_id, reason=body.reason)
        return await _read_plan(uow, plan_id)

    @router.get("/plans/{plan_id}", response_model=Plan, tags=["treatment plans"])
    async def get_plan(plan_id: uuid.UUID, uow: UowDep, access: Readers) -> Any:
        await access.patient(await _plan_patient(uow, plan_id), "read", "plan", plan_id)
        return await _read_plan(uow, plan_id)

    @router.get(
        "/patients/{patient_id}/plan",
        response_model=Plan,
        tags=["treatment plans"],
        summary="The patient's latest plan",
    )
    async def get_patient_plan(patient_id: uuid.UUID, uow: UowDep, access: Readers) -> Any:
        await access.patient(patient_id, "read", "plan")
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

    @router.post("/dose-proposals/{proposal_id}/approve", response_model=Plan, tags=["doses"])
    async def approve(proposal_id: uuid.UUID, body: Approval, uow: UowDep, access: Clinical) -> Any:
        access.acting_clinician(body.clinician_id)
        await access.patient(await _proposal_patient(uow, proposal_id), "approve", "dose-proposal", proposal_id)
        async with uow.transaction() as tx:
            await plans.approve_dose(tx, proposal_id, actor=body.clinician_id, rules=rules, dose_mg=body.dose_mg)
            plan_id = (
                await tx.session.execute(
                    select(dose_proposals.c.plan_id).where(dose_proposals.c.proposal_id == proposal_id)
                )
            ).scalar_one()
        return await _read_plan(uow, plan_id)

    @router.post(
        "/dosing-sessions/{appointment_id}/authorise",
        response_model=SessionDecision,
        tags=["sessions"],
        summary="May this dosing session go ahead? Asked at session start; a refusal says why",
    )
    async def authorise(appointment_id: uuid.UUID, body: SessionRequest, uow: UowDep, access: Clinical) -> Any:
        await access.patient(body.patient_id, "authorise", "dosing-session", appointment_id)
        async with uow.transaction() as tx:
            decision = await plans.authorise_session(
                tx, appointment_id=appointment_id, patient_id=body.patient_id, now=datetime.now(UTC), rules=rules
            )
        return decision.__dict__

    return router


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
        proposals = await session.execute(
            select(dose_proposals).where(dose_proposals.c.plan_id == plan_id).order_by(dose_proposals.c.proposed_at)
        )
        return {
            **plan._asdict(),
            "open_hold_ids": list(holds.scalars()),
            "transitions": [t._asdict() for t in transitions],
            "proposals": [p._asdict() for p in proposals],
        }
