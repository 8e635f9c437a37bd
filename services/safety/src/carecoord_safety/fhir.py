"""Safety's FHIR R4 resources (docs/fhir.md): what patients reported and measured, and the reviews it opened.

Pure mappings from the rows queries.py reads; fhir_router (carecoord_shared.http.fhir) serves them with the
same authorisation and audit as the chart's own reads ("list"/"read" of the same resource names).

- ``Observation``, vital signs (category vital-signs): a blood-pressure reading is the panel 85354-9 with
  systolic 8480-6 and diastolic 8462-4 as components in mm[Hg], id the reading's; the heart rate taken with
  it is its own Observation 8867-4 in /min (the vital-signs profile's shape), id ``<reading>-hr``. Out of
  the program's limits: interpretation ``A`` (abnormal).
- ``Observation``, screening totals (category survey) from mood check-ins: one per instrument answered,
  id ``<check-in>-<instrument>``, codes carecoord_shared.http.fhir.SCREENING_TOTALS (intake serves the
  baselines with the same codes).
- ``AdverseEvent``: a side-effect report; ``event`` carries each reported symptom as a coding of our symptom
  vocabulary (rules/) and their names as text (FHIR means a concept's codings to be alternatives: a report of
  several symptoms is one event here, so a reader must take the codings as a list); ``severity`` from the
  CTCAE-style grade (1 mild, 2 moderate, 3 and above severe). R4's AdverseEvent has no note element, so the
  patient's free text stays on GET /v1/patients/{id}/side-effect-reports (clinicians only).
- ``Task``: a clinician review. status open → ``requested``, acknowledged → ``in-progress``, resolved →
  ``completed``; priority urgent → ``urgent``, high → ``asap``, routine → ``routine``; ``restriction.period.end``
  the due time; ``input`` what triggered it (AdverseEvent/Observation references); ``output`` the decision; the
  resolution note as ``note``, for clinicians only, as on GET /v1/reviews/{id}.
"""

from __future__ import annotations

import uuid
from typing import Any

from carecoord_shared.auth import Principal, Role
from carecoord_shared.errors import NotFound
from carecoord_shared.http.fhir import (
    CODE_PARAM,
    CODE_SYSTEM_BASE,
    LOINC,
    OBSERVATION_CATEGORY,
    SCREENING_TOTALS,
    FhirResource,
    by_code,
    coding,
    concept,
    instant,
    patient_ref,
    reference,
    uuid_id,
)
from carecoord_shared.messaging.unit_of_work import UnitOfWork

from . import queries
from .models import mood_checkins, side_effect_reports, vitals_readings

UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SEVERITY = "http://terminology.hl7.org/CodeSystem/adverse-event-severity"
SYMPTOMS = f"{CODE_SYSTEM_BASE}/symptom"
REVIEW = f"{CODE_SYSTEM_BASE}/clinician-review"
HEART_RATE_SUFFIX = "-hr"
INSTRUMENTS = ("phq9", "gad7", "pcl5")

TASK_STATUS = {"open": "requested", "acknowledged": "in-progress", "resolved": "completed"}
TASK_PRIORITY = {"urgent": "urgent", "high": "asap", "routine": "routine"}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [concept(OBSERVATION_CATEGORY, code, display)]


def _mm_hg(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}


def vitals_observations(reading: dict[str, Any]) -> list[dict[str, Any]]:
    """A vitals reading: the blood-pressure panel, and the heart rate when one was taken."""
    common = {
        "resourceType": "Observation",
        "status": "final",
        "category": _category("vital-signs", "Vital Signs"),
        "subject": patient_ref(reading["patient_id"]),
        "effectiveDateTime": instant(reading["measured_at"]),
        "issued": instant(reading["received_at"]),
    }
    if reading["out_of_limits"]:
        common["interpretation"] = [concept(INTERPRETATION, "A", "Abnormal")]
    pressure = {
        **common,
        "id": str(reading["reading_id"]),
        "code": concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
        "component": [
            {"code": concept(LOINC, "8480-6", "Systolic blood pressure"), "valueQuantity": _mm_hg(reading["systolic"])},
            {
                "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                "valueQuantity": _mm_hg(reading["diastolic"]),
            },
        ],
    }
    if reading["heart_rate"] is None:
        return [pressure]
    rate = {
        **common,
        "id": f"{reading['reading_id']}{HEART_RATE_SUFFIX}",
        "code": concept(LOINC, "8867-4", "Heart rate"),
        "valueQuantity": {"value": reading["heart_rate"], "unit": "beats/minute", "system": UCUM, "code": "/min"},
    }
    return [pressure, rate]


def screening_observations(checkin: dict[str, Any]) -> list[dict[str, Any]]:
    """A mood check-in: one Observation per instrument's total it answered."""
    found = []
    for instrument in INSTRUMENTS:
        total = checkin[f"{instrument}_total"]
        if total is None:
            continue
        system, code, display = SCREENING_TOTALS[instrument]
        found.append(
            {
                "resourceType": "Observation",
                "id": f"{checkin['checkin_id']}-{instrument}",
                "status": "final",
                "category": _category("survey", "Survey"),
                "code": concept(system, code, display),
                "subject": patient_ref(checkin["patient_id"]),
                "effectiveDateTime": instant(checkin["answered_at"]),
                "issued": instant(checkin["received_at"]),
                "valueInteger": total,
            }
        )
    return found


def _severity(grade: int) -> dict[str, Any]:
    code = "mild" if grade <= 1 else "moderate" if grade == 2 else "severe"
    return concept(SEVERITY, code, code.capitalize(), text=f"grade {grade}")


def adverse_event(report: dict[str, Any]) -> dict[str, Any]:
    symptoms = list(report["symptoms"])
    return {
        "resourceType": "AdverseEvent",
        "id": str(report["report_id"]),
        "actuality": "actual",
        "event": {"coding": [coding(SYMPTOMS, s) for s in symptoms], "text": ", ".join(symptoms)},
        "subject": patient_ref(report["patient_id"]),
        "recordedDate": instant(report["received_at"]),
        "severity": _severity(report["grade"]),
    }


def _trigger(entry: dict[str, Any]) -> dict[str, Any] | None:
    """What one trigger of a review points at, where a FHIR resource here shows it."""
    source = entry["source_id"]
    if entry["source_kind"] == "side_effect":
        return reference("AdverseEvent", source, "side-effect report")
    if entry["source_kind"] == "vitals":
        return reference("Observation", source, "vitals reading")
    return None


def task(review: dict[str, Any], *, with_note: bool) -> dict[str, Any]:
    """A clinician review as a Task; the resolution note only ``with_note`` (clinicians)."""
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(review["review_id"]),
        "status": TASK_STATUS[review["status"]],
        "intent": "order",
        "priority": TASK_PRIORITY[review["priority"]],
        "code": concept(REVIEW, "clinician-review", "Clinician review"),
        "reasonCode": concept(f"{REVIEW}-reason", review["reason"], text=review["reason"].replace("_", " ")),
        "for": patient_ref(review["patient_id"]),
        "authoredOn": instant(review["opened_at"]),
        "lastModified": instant(review["resolved_at"] or review["acknowledged_at"] or review["opened_at"]),
        "restriction": {"period": {"end": instant(review["due_at"])}},
    }
    if review["overdue_at"] is not None:
        resource["businessStatus"] = concept(REVIEW, "overdue", "Overdue", text="not acknowledged by its due time")
    if review["acknowledged_by"]:
        resource["owner"] = reference("Practitioner", review["acknowledged_by"])
        period = {"start": instant(review["acknowledged_at"])}
        if review["resolved_at"] is not None:
            period["end"] = instant(review["resolved_at"])
        resource["executionPeriod"] = period
    inputs = [
        {"type": concept(REVIEW, "trigger", "What opened or joined the review"), "valueReference": ref}
        for ref in (_trigger(t) for t in review["trigger_history"])
        if ref is not None
    ]
    if inputs:
        resource["input"] = inputs
    if review["decision"]:
        resource["output"] = [
            {
                "type": concept(REVIEW, "decision", "The clinician's decision"),
                "valueCodeableConcept": concept(f"{REVIEW}-decision", review["decision"]),
            }
        ]
    if with_note and review["resolution_note"]:
        note: dict[str, Any] = {"text": review["resolution_note"], "time": instant(review["resolved_at"])}
        if review["resolved_by"]:
            note["authorReference"] = reference("Practitioner", review["resolved_by"])
        resource["note"] = [note]
    return resource


# --- what fhir_router serves ---------------------------------------------------------------------------


def _split(resource_id: str) -> tuple[uuid.UUID, str]:
    """An Observation id: ``<uuid>`` (a blood-pressure panel), ``<uuid>-hr`` or ``<uuid>-<instrument>``."""
    head, suffix = resource_id[:36], resource_id[36:]
    return uuid_id(head, "observation"), suffix


async def _observation_row(uow: UnitOfWork, resource_id: str) -> tuple[str, dict[str, Any]]:
    row_id, suffix = _split(resource_id)
    if suffix in ("", HEART_RATE_SUFFIX):
        t = vitals_readings.c
        rows = await queries.fhir_rows(uow, vitals_readings, t.reading_id, t.measured_at, row_id=row_id)
        kind = "vitals"
    elif suffix.removeprefix("-") in INSTRUMENTS:
        t = mood_checkins.c
        rows = await queries.fhir_rows(uow, mood_checkins, t.checkin_id, t.answered_at, row_id=row_id)
        kind = "mood-check-in"
    else:
        rows = []
    if not rows:
        raise NotFound(f"no observation {resource_id}")
    return kind, rows[0]


async def _observation_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
    return (await _observation_row(uow, resource_id))[1]["patient_id"]  # type: ignore[no-any-return]


async def _observation_read(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
    kind, row = await _observation_row(uow, resource_id)
    found = vitals_observations(row) if kind == "vitals" else screening_observations(row)
    match = [o for o in found if o["id"] == resource_id]
    if not match:  # an instrument not answered, or a reading without a heart rate
        raise NotFound(f"no observation {resource_id}")
    return match[0]


async def _observation_search(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
    v, m = vitals_readings.c, mood_checkins.c
    readings = await queries.fhir_rows(uow, vitals_readings, v.reading_id, v.measured_at, patient_id=patient_id)
    checkins = await queries.fhir_rows(uow, mood_checkins, m.checkin_id, m.answered_at, patient_id=patient_id)
    found = [o for r in readings for o in vitals_observations(r)] + [
        o for c in checkins for o in screening_observations(c)
    ]
    # Newest first across both kinds, as each list already is.
    return sorted(found, key=lambda o: o["effectiveDateTime"], reverse=True)


async def _report(uow: UnitOfWork, resource_id: str) -> dict[str, Any]:
    t = side_effect_reports.c
    rows = await queries.fhir_rows(
        uow, side_effect_reports, t.report_id, t.received_at, row_id=uuid_id(resource_id, "side-effect report")
    )
    if not rows:
        raise NotFound(f"no side-effect report {resource_id}")
    return rows[0]


async def _report_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
    return (await _report(uow, resource_id))["patient_id"]  # type: ignore[no-any-return]


async def _report_read(uow: UnitOfWork, resource_id: str, _principal: Principal) -> dict[str, Any]:
    return adverse_event(await _report(uow, resource_id))


async def _report_search(uow: UnitOfWork, patient_id: uuid.UUID, _principal: Principal) -> list[dict[str, Any]]:
    t = side_effect_reports.c
    rows = await queries.fhir_rows(uow, side_effect_reports, t.report_id, t.received_at, patient_id=patient_id)
    return [adverse_event(r) for r in rows]


async def _review_owner(uow: UnitOfWork, resource_id: str) -> uuid.UUID:
    return await queries.review_patient(uow, uuid_id(resource_id, "clinician review"))


async def _review_read(uow: UnitOfWork, resource_id: str, principal: Principal) -> dict[str, Any]:
    [review] = await queries.review_tasks(uow, review_id=uuid_id(resource_id, "clinician review"))
    return task(review, with_note=principal.role is Role.CLINICIAN)


async def _review_search(uow: UnitOfWork, patient_id: uuid.UUID, principal: Principal) -> list[dict[str, Any]]:
    found = await queries.review_tasks(uow, patient_id=patient_id)
    return [task(r, with_note=principal.role is Role.CLINICIAN) for r in found]


# The audit names are the chart's: a search is the list of the same rows, a read the one row.
RESOURCES = (
    FhirResource(
        "Observation",
        audit_resource="observation",
        owner=_observation_owner,
        read=_observation_read,
        search=_observation_search,
        search_action="list",
        search_params=(("patient", "reference", "The patient (id or Patient/<id>); required"), CODE_PARAM),
        narrow=by_code,
    ),
    FhirResource(
        "AdverseEvent",
        audit_resource="side-effect-report",
        owner=_report_owner,
        read=_report_read,
        search=_report_search,
        search_action="list",
    ),
    FhirResource(
        "Task",
        audit_resource="review",
        owner=_review_owner,
        read=_review_read,
        search=_review_search,
        search_action="list",
    ),
)
