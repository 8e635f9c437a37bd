"""Dosing's FHIR R4 resources: the treatment plan as a CarePlan (docs/fhir.md).

Pure mapping from the rows queries.py reads; fhir_router (carecoord_shared.http.fhir) serves them with
the same authorisation and audit as GET /v1/plans/{id} ("read plan").

- ``status``: draft, active, ``on-hold`` while paused (an open treatment hold: a clinician review),
  completed, and ``revoked`` for discontinued (R4: "the plan has been terminated prior to reaching
  completion").
- ``supportingInfo``: while on hold, the reviews the plan waits on, as ``Task/<review id>``: safety
  serves those Tasks; a reference is relative to the server that serves the type (docs/fhir.md).
- ``activity``: one activity for the course of dosing sessions, its detail a ketamine tablet dose
  (RxNorm 6130, ketamine) at the approved dose, every ``cadence_days`` for ``planned_sessions``;
  its ``progress`` says how many sessions were completed.
- Left out: the dose proposals and the plan's transitions (the plan's own read shows them) and the
  diagnoses as Conditions (no service serves Condition); the indication and the ICD-10-CM codes are
  in ``description``, a clinician's reading, not a coded claim.
"""

from __future__ import annotations

import uuid
from typing import Any

from carecoord_contracts.common import PlanStatus
from carecoord_shared.auth import Principal
from carecoord_shared.http.fhir import (
    CODE_SYSTEM_BASE,
    FhirResource,
    concept,
    instant,
    patient_ref,
    reference,
    uuid_id,
)
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import queries

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
KETAMINE = "6130"  # RxNorm ingredient: ketamine (https://mor.nlm.nih.gov/RxNav/search?searchBy=RXCUI&searchTerm=6130)

CARE_PLAN_STATUS = {
    PlanStatus.draft: "draft",
    PlanStatus.active: "active",
    PlanStatus.paused: "on-hold",
    PlanStatus.completed: "completed",
    PlanStatus.discontinued: "revoked",
}
# CarePlan.activity.detail.status (required binding, CarePlanActivityStatus).
ACTIVITY_STATUS = {
    PlanStatus.draft: "not-started",
    PlanStatus.active: "in-progress",
    PlanStatus.paused: "on-hold",
    PlanStatus.completed: "completed",
    PlanStatus.discontinued: "stopped",
}


def care_plan(plan: dict[str, Any]) -> dict[str, Any]:
    """One plan row (with ``open_hold_review_ids``) as a CarePlan."""
    status = PlanStatus(plan["status"])
    on_hold = status is PlanStatus.paused
    diagnoses = ", ".join(plan.get("diagnosis_codes") or [])
    description = "; ".join(
        part
        for part in (
            f"Indication: {plan['indication']}" if plan.get("indication") else "",
            f"Diagnoses (ICD-10-CM): {diagnoses}" if diagnoses else "",
        )
        if part
    )
    dose = plan["approved_dose_mg"]
    detail: dict[str, Any] = {
        "kind": "MedicationRequest",
        "code": concept(f"{CODE_SYSTEM_BASE}/activity", "ketamine-dosing-session", "At-home ketamine dosing session"),
        "status": ACTIVITY_STATUS[status],
        "scheduledTiming": {
            "repeat": {
                "frequency": 1,
                "period": plan["cadence_days"],
                "periodUnit": "d",
                "count": plan["planned_sessions"],
            }
        },
        "productCodeableConcept": concept(RXNORM, KETAMINE, "ketamine", text="ketamine oral rapid-dissolve tablet"),
        "description": (
            f"{plan['sessions_completed']} of {plan['planned_sessions']} sessions completed; "
            f"starting dose {plan['starting_dose_mg']} mg, at most {plan['max_dose_mg']} mg "
            f"in steps of at most {plan['max_step_mg']} mg"
        ),
    }
    if dose is not None:
        detail["dailyAmount"] = {
            "value": dose, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"
        }  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(plan["plan_id"]),
        "meta": {"lastUpdated": instant(plan["updated_at"])},
        "status": CARE_PLAN_STATUS[status],
        "intent": "plan",
        "title": "Ketamine-assisted therapy",
        "subject": patient_ref(plan["patient_id"]),
        "created": instant(plan["created_at"]),
        "author": reference("Practitioner", plan["created_by"]),
        "activity": [{"detail": detail}],
    }
    if description:
        resource["description"] = description
    if on_hold and plan["open_hold_review_ids"]:
        resource["supportingInfo"] = [
            reference("Task", review_id, "clinician review the plan is on hold for")
            for review_id in plan["open_hold_review_ids"]
        ]
    return resource


async def _owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
    return await queries.plan_patient(uow, uuid_id(resource_id, "treatment plan"))


async def _read(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
    [plan] = await queries.plans_with_holds(uow, plan_id=uuid_id(resource_id, "treatment plan"))
    return care_plan(plan)


async def _search(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
    return [care_plan(p) for p in await queries.plans_with_holds(uow, patient_id=patient_id)]


RESOURCES = (FhirResource("CarePlan", audit_resource="plan", owner=_owner, read=_read, search=_search),)
