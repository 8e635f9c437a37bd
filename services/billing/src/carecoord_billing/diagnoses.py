"""What billing knows of a patient's diagnosis: the codes clinicians recorded in their treatment plans.

Learnt from TreatmentPlanCreated (dosing.plans); a claim carries the codes of the
patient's latest plan (claims.py). A plan event without codes (written before
plans recorded them) tells billing nothing, and no code is ever made up.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from carecoord_contracts.dosing import TreatmentPlanCreated
from carecoord_shared.messaging.unit_of_work import Transaction
from carecoord_shared.statements import insert_new

from .models import plan_diagnoses


async def record(tx: Transaction, *, patient_id: uuid.UUID, planned_at: datetime, event: TreatmentPlanCreated) -> None:
    if not event.diagnosis_codes:
        return
    await insert_new(
        tx.session,
        plan_diagnoses,
        "plan_id",
        plan_id=event.plan_id,
        patient_id=patient_id,
        indication=event.indication.value if event.indication else None,
        diagnosis_codes=list(event.diagnosis_codes),
        planned_at=planned_at,
    )
