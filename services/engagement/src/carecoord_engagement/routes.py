"""HTTP routes: the task list, one task, closing a task with its outcome, handing it on. Each route
authorises, calls one use case (tasks.py) or query (queries.py) and presents the answer (schemas.py).

Who may do what (carecoord_shared.auth; "licensed" = a clinician licensed in the patient's state;
every check about a task writes an audit row naming its patient):

| route                         | patient | clinician                          | operator           | service |
|-------------------------------|---------|------------------------------------|--------------------|---------|
| GET /tasks (the list, paged)  | -       | theirs (1), licensed states        | operators' queue   | all     |
| GET /tasks/{id}               | -       | theirs (1), licensed               | operators' queue   | yes     |
| POST /tasks/{id}/close        | -       | theirs (1), licensed               | operators' queue   | yes     |
| PUT /tasks/{id}/owner         | -       | theirs (1), licensed               | any (2)            | yes     |

(1) A clinician's tasks: those in the clinicians' queue that they own, that nobody owns yet, or whose
patient they are related to (care team, the assignee of a review; carecoord_shared.auth.care). A task
is staff work, not the patient's record: patients have no route here (what they are told comes as a
message). Operators work the operators' queue (reviews nobody could book, pages nobody could take):
closing such a task records what was done about the system, not a clinical decision. The billing
office's queue (denied claims) is worked by billing staff, who call as a service (as billing's
denial queue). (2) Handing work on is routing, which operators do (as safety's review reassignment):
they may move any task without reading the patient's chart. A task refused by (1) is refused before
the patient check, and its audit row names the route (the HTTP layer's refusal row).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from carecoord_shared.auth import Access, Role
from carecoord_shared.errors import Forbidden
from carecoord_shared.http import PageDep, UowDep, allow
from carecoord_shared.messaging.unit_of_work import Transaction, UnitOfWork

from . import queries, tasks
from .domain import InvalidOutcome, Kind, Owner, OwnerRole
from .queries import Scope
from .schemas import CloseTask, Reassign, Task, TaskPage

Staff = Annotated[Access, allow(Role.CLINICIAN, Role.OPERATOR, Role.SERVICE)]


def scope_of(access: Access, *, licensed_states: bool = True) -> Scope:
    principal = access.principal
    if principal.role is Role.SERVICE:
        return Scope()
    if principal.role is Role.OPERATOR:
        return Scope(OwnerRole.operator)
    return Scope.clinician(principal.subject, principal.licensed_states if licensed_states else None)


def _refusal(access: Access) -> str:
    if access.principal.role is Role.OPERATOR:
        return "operators work the operators' queue: this task is in another"
    return "the task is not the clinician's: not theirs, not unowned, and not of a patient they are related to"


def _presented(access: Access, task: dict[str, Any]) -> dict[str, Any]:
    # The closing note may say things about the patient: operators, who reach no patient data, do not get it.
    return {**task, "note": None} if access.principal.role is Role.OPERATOR else task


def build_router(clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["tasks"])

    async def reach(access: Access, uow: UnitOfWork, task_id: uuid.UUID, *, any_task: bool = False) -> uuid.UUID:
        """The task's patient, for the patient check that follows; Forbidden first for an operator's task outside
        the operators' queue (``any_task``: an operator may route any task). A clinician's reach is the patient
        check's: the care team, a review assigned to them, a task of theirs or of the clinicians' queue
        (ADR 0015), so that a refusal is the patient's denied audit row like everywhere else."""
        patient_id, shown = await queries.task_patient(uow, task_id, scope_of(access, licensed_states=False))
        if not shown and access.principal.role is Role.OPERATOR and not any_task:
            raise Forbidden(_refusal(access))
        return patient_id

    @router.get("/tasks", response_model=TaskPage, summary="Tasks, earliest due first, a page at a time")
    async def list_tasks(
        uow: UowDep,
        access: Staff,
        page: PageDep,
        owner: Annotated[
            str | None,
            Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="me (the caller's own) or a staff id"),
        ] = None,
        kind: Annotated[list[Kind] | None, Query(max_length=10, description="only these kinds (repeatable)")] = None,
        state: Annotated[
            list[Literal["open", "closed"]] | None, Query(max_length=2, description="open (default), closed")
        ] = None,
        patient_id: uuid.UUID | None = None,
        overdue: Annotated[
            bool | None, Query(description="true: only open tasks past due; false: none of them")
        ] = None,
    ) -> dict[str, Any]:
        if patient_id is not None:
            await access.patient(patient_id, "list", "task", operational=True)
        else:
            await access.record("list", "task")
        found = await queries.list_tasks(
            uow,
            page,
            scope_of(access),
            now=clock(),
            owner=access.principal.subject if owner == "me" else owner,
            kinds=[k.value for k in kind] if kind else None,
            states=list(state) if state else None,
            patient_id=patient_id,
            overdue=overdue,
        )
        return {**found, "items": [_presented(access, t) for t in found["items"]]}

    @router.get("/tasks/{task_id}", response_model=Task)
    async def get_task(task_id: uuid.UUID, uow: UowDep, access: Staff) -> dict[str, Any]:
        patient_id = await reach(access, uow, task_id)
        await access.patient(patient_id, "read", "task", task_id, operational=True)
        return _presented(access, await queries.task(uow, task_id, clock()))

    @router.post("/tasks/{task_id}/close", response_model=Task, summary="Close the task with how it ended")
    async def close_task(task_id: uuid.UUID, body: CloseTask, uow: UowDep, access: Staff) -> dict[str, Any]:
        patient_id = await reach(access, uow, task_id)
        opened: AbstractAsyncContextManager[Transaction]
        if access.principal.role is Role.OPERATOR:
            # An operator's close is about the system's own queue: checked and audited as operational.
            await access.patient(patient_id, "close", "task", task_id, operational=True)
            opened = uow.transaction()
        else:
            opened = access.transaction(uow, patient_id, "close", "task", task_id)
        try:
            async with opened as tx:
                await tasks.close(
                    tx, task_id, outcome=body.outcome, note=body.note, closed_by=access.principal.subject, now=clock()
                )
        except InvalidOutcome as wrong:
            raise RequestValidationError(
                [{"loc": ("body", "outcome"), "msg": str(wrong), "type": "outcome_not_of_kind"}]
            ) from wrong
        return _presented(access, await queries.task(uow, task_id, clock()))

    @router.put("/tasks/{task_id}/owner", response_model=Task, summary="Hand the task to someone else or a queue")
    async def reassign(task_id: uuid.UUID, body: Reassign, uow: UowDep, access: Staff) -> dict[str, Any]:
        patient_id = await reach(access, uow, task_id, any_task=True)
        await access.patient(patient_id, "reassign", "task", task_id, operational=True)
        async with uow.transaction() as tx:
            await tasks.reassign(tx, task_id, Owner(body.owner_id, body.owner_role))
        return _presented(access, await queries.task(uow, task_id, clock()))

    return router
