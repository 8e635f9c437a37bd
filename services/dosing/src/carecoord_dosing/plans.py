"""Plan operations: each runs inside the caller's transaction and emits its events.

Shared by the HTTP API (clinician decisions) and the event handlers (holds),
so a rule is enforced the same way whichever door a change comes through.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_shared.contracts.common import PlanStatus
from carecoord_shared.contracts.dosing import (
    TreatmentPlanActivated,
    TreatmentPlanCreated,
    TreatmentPlanPaused,
    TreatmentPlanResumed,
)
from carecoord_shared.errors import NotFound
from carecoord_shared.messaging.unit_of_work import Transaction

from . import domain
from .models import plan_transitions, treatment_holds, treatment_plans


async def live_plan_for_update(tx: Transaction, patient_id: uuid.UUID) -> Any:
    return (
        await tx.session.execute(
            select(treatment_plans)
            .where(treatment_plans.c.patient_id == patient_id, treatment_plans.c.status.in_([s.value for s in domain.LIVE]))
            .with_for_update()
        )
    ).first()


async def open_hold_ids(tx: Transaction, patient_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await tx.session.execute(
        select(treatment_holds.c.hold_id)
        .where(treatment_holds.c.patient_id == patient_id, treatment_holds.c.status == "open")
        .order_by(treatment_holds.c.opened_at)
    )
    return list(rows.scalars())


async def create_plan(tx: Transaction, *, patient_id: uuid.UUID, actor: str, **limits: int) -> uuid.UUID:
    domain.check_dosing_limits(limits["starting_dose_mg"], limits["max_dose_mg"], limits["max_step_mg"])
    if await live_plan_for_update(tx, patient_id):
        raise domain.PlanRuleViolation("the patient already has a live treatment plan")
    plan_id = uuid.uuid4()
    await tx.session.execute(
        insert(treatment_plans).values(
            plan_id=plan_id, patient_id=patient_id, status=PlanStatus.draft.value, created_by=actor, **limits
        )
    )
    tx.emit(TreatmentPlanCreated(plan_id=plan_id, **limits), patient_id=patient_id)
    return plan_id


async def activate_plan(tx: Transaction, plan_id: uuid.UUID, *, actor: str) -> None:
    plan = (
        await tx.session.execute(select(treatment_plans).where(treatment_plans.c.plan_id == plan_id).with_for_update())
    ).first()
    if plan is None:
        raise NotFound(f"no treatment plan {plan_id}")
    holds = await open_hold_ids(tx, plan.patient_id)
    domain.check_activation(PlanStatus(plan.status), len(holds))
    await _move(tx, plan, PlanStatus.active, actor=actor, reason="clinician_activated")
    tx.emit(TreatmentPlanActivated(plan_id=plan_id), patient_id=plan.patient_id)


async def open_hold(
    tx: Transaction, *, hold_id: uuid.UUID, patient_id: uuid.UUID, review_id: uuid.UUID, reason: str
) -> None:
    """Open a hold (idempotent on its id) and pause the patient's active plan."""
    await tx.session.execute(
        pg_insert(treatment_holds)
        .values(hold_id=hold_id, patient_id=patient_id, review_id=review_id, reason=reason)
        .on_conflict_do_nothing(index_elements=[treatment_holds.c.hold_id])
    )
    await _reconcile(tx, patient_id, actor="safety", reason=reason)


async def release_hold(tx: Transaction, *, hold_id: uuid.UUID, patient_id: uuid.UUID, decision: str) -> None:
    await tx.session.execute(
        update(treatment_holds)
        .where(treatment_holds.c.hold_id == hold_id, treatment_holds.c.status == "open")
        .values(status="released", released_at=func.now(), release_decision=decision)
    )
    await _reconcile(tx, patient_id, actor="clinician_review", reason=f"hold_released_{decision}")


async def _reconcile(tx: Transaction, patient_id: uuid.UUID, *, actor: str, reason: str) -> None:
    """Bring the live plan's status in line with the open holds."""
    plan = await live_plan_for_update(tx, patient_id)
    if plan is None:
        return  # recorded; a plan created later cannot activate while the hold is open
    holds = await open_hold_ids(tx, patient_id)
    current = PlanStatus(plan.status)
    target = domain.status_with_holds(current, len(holds))
    if target is current:
        return
    await _move(tx, plan, target, actor=actor, reason=reason)
    if target is PlanStatus.paused:
        tx.emit(TreatmentPlanPaused(plan_id=plan.plan_id, hold_ids=holds, reason=reason), patient_id=patient_id)
    else:
        tx.emit(TreatmentPlanResumed(plan_id=plan.plan_id), patient_id=patient_id)


async def _move(tx: Transaction, plan: Any, target: PlanStatus, *, actor: str, reason: str) -> None:
    domain.check_transition(PlanStatus(plan.status), target)
    await tx.session.execute(
        update(treatment_plans)
        .where(treatment_plans.c.plan_id == plan.plan_id)
        .values(status=target.value, updated_at=datetime.now(UTC))
    )
    await tx.session.execute(
        insert(plan_transitions).values(
            plan_id=plan.plan_id, from_status=plan.status, to_status=target.value, actor=actor, reason=reason
        )
    )
