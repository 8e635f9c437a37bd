"""The read side: one task, and the task list with its filters, narrowed to what the caller may work.

Who sees which tasks (routes.py says why): a service every task; an operator the operators' queue; a
clinician the clinicians' tasks of patients resident in their licensed states that they own, that
nobody owns yet (the queue), or whose patient they are related to (care team, an assigned review).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.auth.care import related_patients
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import UnitOfWork
from carecoord_shared.pagination import Ordering, PageRequest, SortKey, read_page

from .domain import OwnerRole
from .models import care_relations, patients, tasks

# Earliest due first (what is about to be late); the id breaks ties so that paging never skips or repeats one.
TASK_ORDER = Ordering("tasks.due", (SortKey(tasks.c.due_at), SortKey(tasks.c.task_id)))


@dataclass(frozen=True)
class Scope:
    """Which tasks a caller may see: every task (a service), one queue (an operator's), or a clinician's."""

    queue: OwnerRole | None = None  # None with no clinician_id: every task
    clinician_id: str | None = None
    # A clinician's licensed states; None: not narrowed by state (one task's check: Access checks the licence).
    states: frozenset[str] | None = frozenset()

    @classmethod
    def clinician(cls, clinician_id: str, states: frozenset[str] | None) -> Scope:
        return cls(OwnerRole.clinician, clinician_id, states)


def visible(scope: Scope) -> ColumnElement[bool] | None:
    if scope.clinician_id is None:
        return None if scope.queue is None else tasks.c.owner_role == scope.queue.value
    licensed = (
        tasks.c.patient_id.in_(select(patients.c.patient_id).where(patients.c.state_of_residence.in_(scope.states)))
        if scope.states is not None
        else true()
    )
    return and_(
        tasks.c.owner_role == OwnerRole.clinician.value,
        licensed,
        or_(
            tasks.c.owner_id == scope.clinician_id,
            tasks.c.owner_id.is_(None),
            tasks.c.patient_id.in_(related_patients(care_relations, scope.clinician_id)),
        ),
    )


def _columns(now: datetime) -> Select[Any]:
    overdue = and_(tasks.c.state == "open", tasks.c.due_at <= now).label("overdue")
    return select(*(c for c in tasks.c if c.name != "seq"), overdue)


async def task(uow: UnitOfWork, task_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    async with uow.sessions() as session:
        row = (await session.execute(_columns(now).where(tasks.c.task_id == task_id))).mappings().one_or_none()
    if row is None:
        raise NotFound(f"no task {task_id}")
    return dict(row)


async def task_patient(uow: UnitOfWork, task_id: uuid.UUID, scope: Scope) -> tuple[uuid.UUID, bool]:
    """The task's patient, and whether ``scope`` shows the task; NotFound when there is no such task."""
    shown = visible(scope)
    query = select(tasks.c.patient_id, (shown if shown is not None else true()).label("shown")).where(
        tasks.c.task_id == task_id
    )
    async with uow.sessions() as session:
        row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound(f"no task {task_id}")
    return row.patient_id, bool(row.shown)


async def list_tasks(
    uow: UnitOfWork,
    page: PageRequest,
    scope: Scope,
    *,
    now: datetime,
    owner: str | None = None,
    kinds: list[str] | None = None,
    states: list[str] | None = None,
    patient_id: uuid.UUID | None = None,
    overdue: bool | None = None,
) -> dict[str, Any]:
    """One page of the tasks the scope shows, earliest due first, with the filters (open ones by default)."""
    query = _columns(now).where(tasks.c.state.in_(states or ["open"]))
    if (where := visible(scope)) is not None:
        query = query.where(where)
    if owner is not None:
        query = query.where(tasks.c.owner_id == owner)
    if kinds:
        query = query.where(tasks.c.kind.in_(kinds))
    if patient_id is not None:
        query = query.where(tasks.c.patient_id == patient_id)
    if overdue is not None:
        late = and_(tasks.c.state == "open", tasks.c.due_at <= now)
        query = query.where(late if overdue else ~late)
    async with uow.sessions() as session:
        return await read_page(session, query, TASK_ORDER, page)


async def task_relation(session: AsyncSession, patient_id: uuid.UUID, clinician_id: str, _state: str) -> str | None:
    """A clinician's relation to a patient through engagement's own work (a RelationLookup, for Access once it
    takes relations, ADR 0015): ``task_owner`` when they own an open task of the patient, ``task_queue`` when
    one waits unowned in the clinicians' queue (someone licensed must be able to pick it up); else None."""
    found = await session.execute(
        select(tasks.c.owner_id)
        .where(
            tasks.c.patient_id == patient_id,
            tasks.c.state == "open",
            tasks.c.owner_role == OwnerRole.clinician.value,
            or_(tasks.c.owner_id == clinician_id, tasks.c.owner_id.is_(None)),
        )
        .order_by(tasks.c.owner_id.is_(None))
        .limit(1)
    )
    row = found.first()
    if row is None:
        return None
    return "task_owner" if row.owner_id == clinician_id else "task_queue"
