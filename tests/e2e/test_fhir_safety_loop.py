"""The headline flow read back through FHIR R4 from a live stack, every resource validated by fhir.resources:
a severe side-effect report is an AdverseEvent, its review a Task, the paused plan an ``on-hold`` CarePlan
that points at the Task; vitals and a mood check-in are Observations with their LOINC codes. Resolving the
review completes the Task and makes the CarePlan active again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from tests.auth import api_client, clinician_token, patient_token
from tests.conftest import eventually
from tests.e2e import intake_journeys, journeys
from tests.fhir_validation import entries
from tests.problem_walk import assert_problem

pytestmark = pytest.mark.e2e

NOTE = "Nausea settled; resume at the same dose."


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


async def _care_plan(http: Any, stack: Stack, patient: uuid.UUID, status: str) -> dict[str, Any] | None:
    bundle = await journeys.fhir(http, stack, "dosing", "/CarePlan", patient=f"Patient/{patient}")
    plans = [p for p in entries(bundle) if p["status"] == status]
    return plans[0] if plans else None


async def test_the_safety_loop_reads_back_as_valid_fhir(services: Stack) -> None:
    await journeys.clinician(services, "psychiatric_clinician", "CO", "America/Denver")
    patient = uuid.UUID(await intake_journeys.complete_intake(services))
    plan = await journeys.active_plan(services, patient)
    measured = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    # The patient's prescriber (the evaluation was booked with them): a licensed clinician outside the care
    # team reads no chart (ADR 0015).
    doctor = await journeys.prescriber(services, patient)
    clinician = api_client(clinician_token(doctor, ["CO"]))
    async with api_client() as http, clinician:
        vitals = await http.post(
            journeys.url(services, "safety", "/v1/vitals"),
            json={"patient_id": str(patient), "systolic": 131, "diastolic": 84, "heart_rate": 77,
                  "measured_at": measured, "context": "pre_dose"},
        )  # fmt: skip
        assert vitals.status_code == 201, vitals.text
        reading = vitals.json()["id"]
        checkin = await http.post(
            journeys.url(services, "safety", "/v1/mood-check-ins"),
            json={"patient_id": str(patient), "phq9_items": [1, 1, 1, 1, 0, 1, 1, 0, 0], "gad7_items": [1] * 7},
        )
        assert checkin.status_code == 201, checkin.text
        report = await journeys.report(services, patient, symptoms=["nausea", "vomiting"], grade=3, note="twice")
        assert report.status_code == 201, report.text
        review_id, report_id = report.json()["review_id"], report.json()["report_id"]

        # The paused plan: on-hold, waiting on the review's Task.
        held = await eventually(
            lambda: _care_plan(clinician, services, patient, "on-hold"), what="the CarePlan on hold after the report"
        )
        assert held["id"] == str(plan["plan_id"]) and held["subject"] == {"reference": f"Patient/{patient}"}
        assert [r["reference"] for r in held["supportingInfo"]] == [f"Task/{review_id}"]
        assert held["activity"][0]["detail"]["status"] == "on-hold"
        one = await journeys.fhir(clinician, services, "dosing", f"/CarePlan/{held['id']}")
        assert one["status"] == "on-hold"

        # The report as an AdverseEvent: both symptoms, severe (grade 3); the patient's note is not in it.
        [event] = entries(await journeys.fhir(clinician, services, "safety", "/AdverseEvent", patient=str(patient)))
        assert event["id"] == report_id and event["actuality"] == "actual"
        assert [c["code"] for c in event["event"]["coding"]] == ["nausea", "vomiting"]
        assert event["severity"]["coding"][0]["code"] == "severe"
        assert "twice" not in str(event)
        assert await journeys.fhir(clinician, services, "safety", f"/AdverseEvent/{report_id}") == event

        # The review as a Task: urgent, requested, triggered by the AdverseEvent.
        [task] = entries(await journeys.fhir(clinician, services, "safety", "/Task", patient=str(patient)))
        assert (task["id"], task["status"], task["priority"], task["intent"]) == (
            review_id,
            "requested",
            "urgent",
            "order",
        )
        assert {"reference": f"AdverseEvent/{report_id}"}.items() <= task["input"][0]["valueReference"].items()
        assert task["for"]["reference"] == f"Patient/{patient}"

        # Vitals and the check-in: the BP panel with its components, the heart rate, the two screening totals.
        observations = entries(await journeys.fhir(clinician, services, "safety", "/Observation", patient=str(patient)))
        by_id = {o["id"]: o for o in observations}
        panel, rate = by_id[reading], by_id[f"{reading}-hr"]
        assert codes(panel) == {"85354-9"} and panel["category"][0]["coding"][0]["code"] == "vital-signs"
        assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in panel["component"]} == {
            "8480-6": 131,
            "8462-4": 84,
        }
        assert panel["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
        assert codes(rate) == {"8867-4"} and rate["valueQuantity"] == {
            "value": 77, "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"
        }  # fmt: skip
        totals = {
            next(iter(codes(o))): o["valueInteger"]
            for o in observations
            if o["category"][0]["coding"][0]["code"] == "survey"
        }
        assert totals == {"44261-6": 6, "70274-6": 7}
        assert await journeys.fhir(clinician, services, "safety", f"/Observation/{reading}-hr") == rate

        # Resolve: the Task completes with the decision and the note (for clinicians), the plan is active again.
        for step, body in (("acknowledge", {}), ("resolve", {"decision": "resume", "note": NOTE})):
            done = await clinician.post(
                journeys.url(services, "safety", f"/v1/reviews/{review_id}/{step}"),
                json={"clinician_id": doctor, **body},
            )
            assert done.status_code == 200, done.text
        completed = await journeys.fhir(clinician, services, "safety", f"/Task/{review_id}")
        assert completed["status"] == "completed" and completed["owner"]["reference"] == f"Practitioner/{doctor}"
        assert completed["output"][0]["valueCodeableConcept"]["coding"][0]["code"] == "resume"
        assert completed["note"][0]["text"] == NOTE
        active = await eventually(
            lambda: _care_plan(clinician, services, patient, "active"), what="the CarePlan active after the resume"
        )
        assert "supportingInfo" not in active

    # The patient reads their own Task, without the clinician's note; another patient is refused (problem details).
    async with api_client(patient_token(patient)) as own, api_client(patient_token(uuid.uuid4())) as stranger:
        mine = await journeys.fhir(own, services, "safety", f"/Task/{review_id}")
        assert mine["status"] == "completed" and "note" not in mine
        refused = await stranger.get(
            journeys.url(services, "safety", "/fhir/R4/Task"), params={"patient": str(patient)}
        )
        assert_problem(refused, 403)
        unknown = await own.get(journeys.url(services, "safety", f"/fhir/R4/Observation/{uuid.uuid4()}-phq9"))
        assert_problem(unknown, 404)
        malformed = await own.get(journeys.url(services, "dosing", "/fhir/R4/CarePlan"), params={"patient": "Jane Roe"})
        assert_problem(malformed, 422)
        assert "Jane" not in malformed.text, "a bad search parameter is named, its value not echoed"


async def test_each_service_states_what_it_serves(services: Stack) -> None:
    async with api_client(patient_token(uuid.uuid4())) as http:
        for service, served in (("dosing", {"CarePlan"}), ("safety", {"Observation", "AdverseEvent", "Task"})):
            statement = await journeys.fhir(http, services, service, "/metadata")
            assert statement["fhirVersion"] == "4.0.1"
            assert {r["type"] for r in statement["rest"][0]["resource"]} == served
