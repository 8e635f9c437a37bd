"""The README's headline flow, then the whole chart read back through each owning service's endpoints:
what a clinician's screen shows, including the note the clinician wrote when resolving the review."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from tests.auth import api_client, clinician_token
from tests.conftest import eventually
from tests.e2e import intake_journeys, journeys

pytestmark = pytest.mark.e2e

NOTE = "Spoke with the patient: nausea settled with rest; resume at the same dose."


async def _get(http: Any, stack: Stack, service: str, path: str, **params: Any) -> Any:
    answer = await http.get(journeys.url(stack, service, path), params=params or None)
    assert answer.status_code == 200, (service, path, answer.text)
    return answer.json()


async def _paused(stack: Stack, patient: uuid.UUID) -> dict[str, Any] | None:
    plan = await journeys.plan(stack, patient)
    return plan if plan["status"] == "paused" else None


async def test_the_headline_flow_then_the_whole_chart_read_back(services: Stack) -> None:
    # Someone licensed in Colorado for scheduling to book the initial evaluation with.
    await journeys.clinician(services, "psychiatric_clinician", "CO", "America/Denver")
    patient = uuid.UUID(await intake_journeys.complete_intake(services))
    await journeys.active_plan(services, patient)
    # The clinician the evaluation was booked with is the prescriber: the one who may read the chart.
    dr = await journeys.prescriber(services, patient)
    clinician = api_client(clinician_token(dr, ["CO"]))
    measured = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    async with api_client() as http, clinician:
        vitals = await http.post(
            journeys.url(services, "safety", "/v1/vitals"),
            json={
                "patient_id": str(patient),
                "systolic": 128,
                "diastolic": 82,
                "heart_rate": 71,
                "measured_at": measured,
                "context": "pre_dose",
            },
        )
        assert vitals.status_code == 201, vitals.text
        checkin = await http.post(
            journeys.url(services, "safety", "/v1/mood-check-ins"),
            json={"patient_id": str(patient), "phq9_items": [1, 1, 1, 1, 0, 1, 1, 0, 0]},
        )
        assert checkin.status_code == 201, checkin.text

        # The headline: a severe report opens an urgent review and pauses the plan.
        report = await journeys.report(services, patient, symptoms=["nausea"], grade=3, note="threw up twice")
        assert report.status_code == 201, report.text
        review_id = report.json()["review_id"]
        await eventually(lambda: _paused(services, patient), what="plan paused after the severe report")

        acknowledged = await clinician.post(
            journeys.url(services, "safety", f"/v1/reviews/{review_id}/acknowledge"), json={"clinician_id": dr}
        )
        assert acknowledged.status_code == 200, acknowledged.text
        resolved = await clinician.post(
            journeys.url(services, "safety", f"/v1/reviews/{review_id}/resolve"),
            json={"clinician_id": dr, "decision": "resume", "note": NOTE},
        )
        assert resolved.status_code == 200, resolved.text

        # The chart, part by part, from the service that owns each.
        intake = await _get(http, services, "intake", f"/v1/patients/{patient}/intake")
        assert set(intake["assessments"]) == {"phq9", "gad7", "pcl5"}, "the intake baselines"
        assert intake["assessments"]["phq9"]["total"] == 12

        reports = await _get(clinician, services, "safety", f"/v1/patients/{patient}/side-effect-reports")
        [seen] = reports["items"]
        assert (seen["symptoms"], seen["grade"], seen["note"]) == (["nausea"], 3, "threw up twice")
        history = await _get(clinician, services, "safety", f"/v1/patients/{patient}/vitals")
        assert [(v["systolic"], v["diastolic"], v["heart_rate"]) for v in history["items"]] == [(128, 82, 71)]
        checkins = await _get(clinician, services, "safety", f"/v1/patients/{patient}/mood-check-ins")
        assert [c["phq9_total"] for c in checkins["items"]] == [6]

        review = await _get(clinician, services, "safety", f"/v1/reviews/{review_id}")
        assert (review["status"], review["decision"], review["resolution_note"]) == ("resolved", "resume", NOTE)
        assert review["acknowledged_by"] == review["resolved_by"] == dr
        assert review["acknowledged_at"] <= review["resolved_at"]
        assert review["trigger_history"], "what opened it"

        resumed = await eventually(
            lambda: _plan_with(services, patient, "active"), what="plan resumed after the review's resume decision"
        )
        assert [t["to_status"] for t in resumed["transitions"]] == ["active", "paused", "active"]

        appointments = await eventually(
            lambda: _appointments(services, patient), what="scheduling booked the initial evaluation"
        )
        assert {a["appointment_type"] for a in appointments} >= {"initial_evaluation"}

        coverage = await eventually(
            lambda: _coverage(http, services, patient), what="billing learnt the declared coverage"
        )
        assert coverage["kind"] == "insurance"


async def _plan_with(stack: Stack, patient: uuid.UUID, status: str) -> dict[str, Any] | None:
    plan = await journeys.plan(stack, patient)
    return plan if plan["status"] == status else None


async def _appointments(stack: Stack, patient: uuid.UUID) -> list[dict[str, Any]] | None:
    return await journeys.appointments(stack, patient, include_all=True) or None


async def _coverage(http: Any, stack: Stack, patient: uuid.UUID) -> dict[str, Any] | None:
    answer = await http.get(journeys.url(stack, "billing", f"/v1/patients/{patient}/coverage"))
    return answer.json() if answer.status_code == 200 else None
