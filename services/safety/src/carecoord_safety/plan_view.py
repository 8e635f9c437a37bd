"""Safety's read model of each patient's treatment plan, kept from dosing's events.

Safety does not own plans; it keeps just enough of them (the plan's per-session
maximum and maximum step, its status, the current approved dose) to answer a
clinician who resolves a review with a dose change synchronously: a dose outside
the plan's limits is refused with a 422 before anything is recorded. Dosing owns
the plan and re-validates the dose when it consumes the release (a plan changed in
between, or a program cap this view does not know): if it refuses, it keeps the
plan paused and says DoseChangeRefused, and safety opens a review for it
(reviews.dose_change_refused). The decision on a dose is domain/plan_limits.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from carecoord_shared.messaging.unit_of_work import Transaction

from .domain.plan_limits import PlanView
from .models import plan_limits


async def of_patient(tx: Transaction, patient_id: uuid.UUID) -> PlanView | None:
    row = (await tx.session.execute(select(plan_limits).where(plan_limits.c.patient_id == patient_id))).first()
    if row is None:
        return None
    return PlanView(row.plan_id, row.status, row.max_dose_mg, row.max_step_mg, row.current_dose_mg)


async def created(
    tx: Transaction,
    *,
    patient_id: uuid.UUID,
    plan_id: uuid.UUID,
    starting_dose_mg: int,
    max_dose_mg: int,
    max_step_mg: int,
) -> None:
    """A new plan replaces the patient's previous one in the view (dosing allows one live plan per patient)."""
    values: dict[str, Any] = {
        "plan_id": plan_id,
        "status": "draft",
        "max_dose_mg": max_dose_mg,
        "max_step_mg": max_step_mg,
        "current_dose_mg": starting_dose_mg,
        "updated_at": func.now(),
    }
    await tx.session.execute(
        pg_insert(plan_limits)
        .values(patient_id=patient_id, **values)
        .on_conflict_do_update(index_elements=[plan_limits.c.patient_id], set_=values)
    )


async def changed(tx: Transaction, *, patient_id: uuid.UUID, plan_id: uuid.UUID, **values: Any) -> None:
    """A later fact about a plan in the view (status, current dose); events about an older plan change nothing,
    and neither does an event keyed by another patient that names this plan (the key is the patient id)."""
    await tx.session.execute(
        update(plan_limits)
        .where(plan_limits.c.patient_id == patient_id, plan_limits.c.plan_id == plan_id)
        .values(**values, updated_at=func.now())
    )
