"""HTTP routes for clinicians' UIs and the patient app: plans, dose approvals, session authorisation.

Each route authorises, calls one use case (plans.py) or query, and presents the answer; the models
are in schemas.py, the reads in queries.py.

Who may call what (carecoord_shared.auth; "licensed" = a clinician licensed in
the patient's state of residence, learnt from PatientRegistered, AND related to
them: on their care team (CareTeamChanged) or assigned a review of theirs
(ClinicianReviewAssigned), ADR 0015; every patient check writes an audit row,
allowed or denied, the allowed one with its basis):

| route                                   | patient  | clinician                | operator | service | audited as                |
|-----------------------------------------|----------|--------------------------|----------|---------|---------------------------|
| POST /plans                             | -        | licensed, in own name    | -        | yes     | create plan               |
| POST /plans/{id}/activate, /discontinue | -        | licensed, in own name    | -        | yes     | activate/discontinue plan |
| GET /plans/{id}                         | own only | licensed                 | -        | yes     | read plan                 |
| GET /patients/{id}/plan                 | own only | licensed                 | -        | yes     | read plan                 |
| POST /dose-proposals/{id}/approve       | -        | licensed, in own name    | -        | yes     | approve dose-proposal     |
| POST /dosing-sessions/{id}/authorise    | -        | licensed                 | -        | yes     | authorise dosing-session  |
| GET /patients/{id}/outcomes             | own only | licensed                 | -        | yes     | read outcomes             |
| GET /outcomes                           | -        | their patients only      | (1)      | yes     | read outcomes (program)   |

Plans, doses and session authorisations are clinical decisions: a patient reads
their plan but decides nothing, and "in own name" means the body's clinician_id
is the token's subject. Authorising a session has no clinician in the body (the
rules decide, the caller asks): the clinician monitoring the session or the
patient app's back end (a service account) asks. Operators reach no patient data
here, so no route admits them, except (1): the program's outcome figures, which are
aggregates; an operator reads them with every cell under the definitions' minimum
size withheld (a count of 3 in one state may point at a person), while a clinician
reads exact counts over the patients they may reach anyway (related to them, in their licensed states)
and a service over all.

A change's check and audit row run in the change's own transaction
(``Access.transaction``): one commit; a refusal commits its denied row alone, and
a change that then fails (409, 422) still leaves its allowed row.
"""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Response, status

from carecoord_shared.auth import Access, Role
from carecoord_shared.http import IDEMPOTENT, UowDep, allow
from carecoord_shared.http.preconditions import IfMatchDep, tagged
from carecoord_shared.messaging.unit_of_work import Transaction

from . import plans, queries
from .domain import TitrationRules
from .outcomes import OutcomeDefinitions
from .schemas import (
    Approval,
    ClinicianAction,
    Discontinue,
    PatientOutcomes,
    Plan,
    PlanCreate,
    ProgramOutcomesOut,
    SessionDecision,
    SessionRequest,
)

Readers = Annotated[Access, allow(Role.PATIENT, Role.CLINICIAN, Role.SERVICE)]
Clinical = Annotated[Access, allow(Role.CLINICIAN, Role.SERVICE)]
ProgramReaders = Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)]


async def _decide_on_plan(
    access: Access, uow: UowDep, plan_id: uuid.UUID, clinician_id: str, action: str
) -> AbstractAsyncContextManager[Transaction]:
    """A decision on a plan: in the caller's own name, on a plan that exists (404), about a patient they may
    reach; the transaction to make it in, which checks and audits that on entering."""
    access.acting_clinician(clinician_id)
    return access.transaction(uow, await queries.plan_patient(uow, plan_id), action, "plan", plan_id)


def build_router(rules: TitrationRules, definitions: OutcomeDefinitions) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post(
        "/plans",
        status_code=status.HTTP_201_CREATED,
        response_model=Plan,
        tags=["treatment plans"],
        dependencies=[IDEMPOTENT],
    )
    async def create_plan(body: PlanCreate, uow: UowDep, access: Clinical, response: Response) -> dict[str, object]:
        access.acting_clinician(body.clinician_id)
        async with access.transaction(uow, body.patient_id, "create", "plan") as tx:
            plan_id = await plans.create_plan(
                tx,
                patient_id=body.patient_id,
                actor=body.clinician_id,
                rules=rules,
                **body.model_dump(exclude={"patient_id", "clinician_id"}),
            )
        return tagged(response, await queries.plan_detail(uow, plan_id))

    @router.post(
        "/plans/{plan_id}/activate",
        response_model=Plan,
        tags=["treatment plans"],
        summary="Activate a draft plan; the activating clinician approves the starting dose",
        dependencies=[IDEMPOTENT],
    )
    async def activate_plan(
        plan_id: uuid.UUID,
        body: ClinicianAction,
        uow: UowDep,
        access: Clinical,
        precondition: IfMatchDep,
        response: Response,
    ) -> dict[str, object]:
        async with await _decide_on_plan(access, uow, plan_id, body.clinician_id, "activate") as tx:
            await plans.activate_plan(tx, plan_id, actor=body.clinician_id, rules=rules, precondition=precondition)
        return tagged(response, await queries.plan_detail(uow, plan_id))

    @router.post(
        "/plans/{plan_id}/discontinue", response_model=Plan, tags=["treatment plans"], dependencies=[IDEMPOTENT]
    )
    async def discontinue_plan(
        plan_id: uuid.UUID,
        body: Discontinue,
        uow: UowDep,
        access: Clinical,
        precondition: IfMatchDep,
        response: Response,
    ) -> dict[str, object]:
        async with await _decide_on_plan(access, uow, plan_id, body.clinician_id, "discontinue") as tx:
            await plans.discontinue_plan(
                tx, plan_id, actor=body.clinician_id, reason=body.reason, precondition=precondition
            )
        return tagged(response, await queries.plan_detail(uow, plan_id))

    @router.get("/plans/{plan_id}", response_model=Plan, tags=["treatment plans"])
    async def get_plan(plan_id: uuid.UUID, uow: UowDep, access: Readers, response: Response) -> dict[str, object]:
        await access.patient(await queries.plan_patient(uow, plan_id), "read", "plan", plan_id)
        return tagged(response, await queries.plan_detail(uow, plan_id))

    @router.get(
        "/patients/{patient_id}/plan",
        response_model=Plan,
        tags=["treatment plans"],
        summary="The patient's latest plan",
    )
    async def get_patient_plan(
        patient_id: uuid.UUID, uow: UowDep, access: Readers, response: Response
    ) -> dict[str, object]:
        await access.patient(patient_id, "read", "plan")
        return tagged(response, await queries.latest_plan(uow, patient_id))

    @router.post(
        "/dose-proposals/{proposal_id}/approve", response_model=Plan, tags=["doses"], dependencies=[IDEMPOTENT]
    )
    async def approve(
        proposal_id: uuid.UUID,
        body: Approval,
        uow: UowDep,
        access: Clinical,
        precondition: IfMatchDep,
        response: Response,
    ) -> dict[str, object]:
        """``If-Match``: the plan's ETag (a proposal is part of its plan)."""
        access.acting_clinician(body.clinician_id)
        patient_id = await queries.proposal_patient(uow, proposal_id)
        async with access.transaction(uow, patient_id, "approve", "dose-proposal", proposal_id) as tx:
            await plans.approve_dose(
                tx, proposal_id, actor=body.clinician_id, rules=rules, dose_mg=body.dose_mg, precondition=precondition
            )
        return tagged(response, await queries.proposal_plan(uow, proposal_id))

    @router.post(
        "/dosing-sessions/{appointment_id}/authorise",
        response_model=SessionDecision,
        tags=["sessions"],
        summary="May this dosing session go ahead? Asked at session start; a refusal says why",
        dependencies=[IDEMPOTENT],
    )
    async def authorise(
        appointment_id: uuid.UUID, body: SessionRequest, uow: UowDep, access: Clinical
    ) -> dict[str, object]:
        async with access.transaction(uow, body.patient_id, "authorise", "dosing-session", appointment_id) as tx:
            decision = await plans.authorise_session(
                tx, appointment_id=appointment_id, patient_id=body.patient_id, now=datetime.now(UTC), rules=rules
            )
        return decision.__dict__

    @router.get(
        "/patients/{patient_id}/outcomes",
        response_model=PatientOutcomes,
        tags=["outcomes"],
        summary="The patient's outcomes per instrument: baseline, latest, change, response, remission",
    )
    async def get_patient_outcomes(patient_id: uuid.UUID, uow: UowDep, access: Readers) -> dict[str, object]:
        await access.patient(patient_id, "read", "outcomes")
        return await queries.patient_outcomes(uow, patient_id, definitions)

    @router.get(
        "/outcomes",
        response_model=ProgramOutcomesOut,
        tags=["outcomes"],
        summary="The program's outcome figures by indication, each with its cohort and definition version",
    )
    async def get_program_outcomes(uow: UowDep, access: ProgramReaders) -> dict[str, object]:
        operator = access.principal.role is Role.OPERATOR
        await access.record("read", "outcomes")
        return await queries.program_outcomes(
            uow,
            definitions,
            as_of=datetime.now(UTC),
            scope=None if operator else access.list_scope,
            suppress=operator,
        )

    return router
