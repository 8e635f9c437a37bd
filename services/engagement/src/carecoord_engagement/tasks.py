"""Tasks: opened from events (in the event's inbox transaction), closed and handed on by people or by
safety's events. One task per (kind, cause): a redelivered event finds its task there and adds nothing.

Nothing here is sent to anyone: notifications.py queues the messages in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from carecoord_shared.errors import NotFound, RuleViolation
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.statements import insert_new_returning, upsert

from .domain import Kind, Owner, check_close
from .models import care_relations, patients, tasks

log = structlog.get_logger("carecoord.engagement.tasks")


async def record_patient(tx: Transaction, patient_id: uuid.UUID, state: str, time_zone: str, now: datetime) -> None:
    values = {"state_of_residence": state, "time_zone": time_zone}
    await upsert(
        tx.session, patients, "patient_id", {"patient_id": patient_id, **values}, on_update={"updated_at": now}
    )


async def prescriber_of(tx: Transaction, patient_id: uuid.UUID) -> str | None:
    """The patient's prescribing clinician as scheduling last said (CareTeamChanged), or None."""
    found = await tx.session.execute(
        select(care_relations.c.clinician_id).where(
            care_relations.c.patient_id == patient_id,
            care_relations.c.relation == "prescriber",
            care_relations.c.review_id.is_(None),
        )
    )
    return found.scalar()


async def open_task(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID,
    kind: Kind,
    cause_event_id: uuid.UUID,
    subject_id: uuid.UUID,
    owner: Owner,
    due_at: datetime,
    reason: str | None = None,
) -> uuid.UUID | None:
    """The new task's id, or None: this cause made its task of this kind already."""
    # Compiled once (the dialect's on_conflict_do_nothing insert has no cache key).
    row = await insert_new_returning(
        session,
        tasks,
        "uq_tasks_kind_cause",
        ("task_id",),
        task_id=uuid.uuid4(),
        patient_id=patient_id,
        kind=kind.value,
        cause_event_id=cause_event_id,
        subject_id=subject_id,
        reason=reason,
        owner_id=owner.owner_id,
        owner_role=owner.role.value,
        due_at=due_at,
    )
    created: uuid.UUID | None = row.task_id if row is not None else None
    if created is not None:
        log.info("task.opened", task_id=str(created), kind=kind.value, owner_role=owner.role.value)
    return created


async def close_open(
    tx: Transaction,
    subject_id: uuid.UUID,
    kinds: Iterable[Kind],
    *,
    outcome: str,
    closed_by: str,
    now: datetime,
    except_task: uuid.UUID | None = None,
) -> int:
    """Close every open task of these kinds about ``subject_id`` with ``outcome``; how many were open."""
    stmt = (
        update(tasks)
        .where(
            tasks.c.subject_id == subject_id,
            tasks.c.kind.in_([k.value for k in kinds]),
            tasks.c.state == "open",
        )
        .values(state="closed", outcome=outcome, closed_by=closed_by[:128], closed_at=now)
    )
    if except_task is not None:
        stmt = stmt.where(tasks.c.task_id != except_task)
    closed = await tx.session.execute(stmt.returning(tasks.c.task_id))
    return len(closed.all())


async def close(
    tx: Transaction, task_id: uuid.UUID, *, outcome: str, note: str | None, closed_by: str, now: datetime
) -> None:
    """A person closes the task with an outcome of its kind; a closed task stays as it was closed (409)."""
    row = (
        await tx.session.execute(
            select(tasks.c.kind, tasks.c.state).where(tasks.c.task_id == task_id).with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no task {task_id}")
    check_close(Kind(row.kind), row.state, outcome)
    await tx.session.execute(
        update(tasks)
        .where(tasks.c.task_id == task_id)
        .values(state="closed", outcome=outcome, note=note, closed_by=closed_by[:128], closed_at=now)
    )
    log.info("task.closed", task_id=str(task_id), kind=row.kind, outcome=outcome)


async def reassign(tx: Transaction, task_id: uuid.UUID, owner: Owner) -> None:
    """Hand an open task to someone else (or back to a queue); a closed task keeps its owner (409)."""
    row = (
        await tx.session.execute(select(tasks.c.state).where(tasks.c.task_id == task_id).with_for_update())
    ).one_or_none()
    if row is None:
        raise NotFound(f"no task {task_id}")
    if row.state != "open":
        raise RuleViolation("the task is closed already: a closed task is not handed on")
    await tx.session.execute(
        update(tasks).where(tasks.c.task_id == task_id).values(owner_id=owner.owner_id, owner_role=owner.role.value)
    )
