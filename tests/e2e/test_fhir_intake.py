"""Intake's FHIR R4 read API over HTTP: a patient registered and screened through intake's own API, read back
as Patient and Observation (search by patient and read by id), every resource checked against the specification
(tests/fhir_validation.py) and its mapped values asserted; refusals, unknown ids and bad parameters are the
project's problem documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from carecoord_devstack.stack import Stack
from tests.auth import api_client, clinician_token, patient_token
from tests.e2e import access_cases as ac
from tests.e2e import intake_journeys, journeys
from tests.e2e.journeys import fhir, url
from tests.fhir_validation import entries, validated
from tests.problem_walk import assert_problem

pytestmark = pytest.mark.e2e

LOINC = "http://loinc.org"
SEVERITY = "https://carecoord.example/fhir/CodeSystem/{}-severity"
# A first PHQ-9, then the one the intake's decision uses (eligible_steps): both are observations.
FIRST_PHQ9 = [0, 0, 1, 0, 0, 0, 0, 1, 0]


async def _screened_patient(stack: Stack) -> tuple[str, dict[str, Any]]:
    """A patient through the whole intake, with a PHQ-9 submitted twice; the registration body."""
    body = intake_journeys.registration()
    registered = await intake_journeys.register(stack, body)
    assert registered.status_code == 201, registered.text
    patient_id: str = registered.json()["patient_id"]
    first = {"instrument": "phq9", "answers": FIRST_PHQ9}
    assert (await intake_journeys.step(stack, patient_id, "POST", "/assessments", first)).status_code == 201
    for method, path, step_body in intake_journeys.eligible_steps():
        response = await intake_journeys.step(stack, patient_id, method, path, step_body)
        assert response.status_code == 201, (path, response.text)
    return patient_id, body


def _code(resource: dict[str, Any]) -> str:
    [coding] = resource["code"]["coding"]
    assert coding["system"] == LOINC
    return str(coding["code"])


async def test_the_screening_totals_read_back_as_loinc_coded_survey_observations(services: Stack) -> None:
    patient_id, _ = await _screened_patient(services)
    status = await intake_journeys.status(services, patient_id)
    async with api_client(patient_token(patient_id), timeout=10) as http:
        bundle = await fhir(http, services, "intake", "/Observation", patient=patient_id)
        found = entries(bundle)
        assert bundle["total"] == 4 == len(found)
        by_id = {r["id"]: r for r in found}
        assert len(by_id) == 4, "one Observation per submitted questionnaire, each its own id"
        for resource in found:
            assert await fhir(http, services, "intake", f"/Observation/{resource['id']}") == resource
            assert resource["status"] == "final"
            assert resource["subject"] == {"reference": f"Patient/{patient_id}"}
            [category] = resource["category"][0]["coding"]
            assert (category["system"], category["code"]) == (
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "survey",
            )

        # First to latest: the first PHQ-9, then the intake's PHQ-9, GAD-7 and PCL-5 (eligible_steps).
        got = [
            (
                _code(r),
                r["valueInteger"],
                r["interpretation"][0]["coding"][0]["system"],
                r["interpretation"][0]["coding"][0]["code"],
            )
            for r in found
        ]
        assert got == [
            ("44261-6", 2, SEVERITY.format("phq9"), "minimal"),
            ("44261-6", 12, SEVERITY.format("phq9"), "moderate"),
            ("70274-6", 5, SEVERITY.format("gad7"), "mild"),
            ("101698-9", 20, SEVERITY.format("pcl5"), "below_threshold"),
        ]
        # The scores the intake counts are the latest of each instrument, submitted when intake says.
        for resource, instrument in zip(found[1:], ("phq9", "gad7", "pcl5"), strict=True):
            summary = status["assessments"][instrument]
            assert resource["valueInteger"] == summary["total"]
            assert _parsed(resource["effectiveDateTime"]) == _parsed(summary["submitted_at"])

        gad7 = entries(
            await fhir(http, services, "intake", "/Observation", patient=patient_id, code=f"{LOINC}|70274-6")
        )
        assert [r["id"] for r in gad7] == [found[2]["id"]]
        phq9 = entries(await fhir(http, services, "intake", "/Observation", patient=patient_id, code="44261-6"))
        assert [r["id"] for r in phq9] == [found[0]["id"], found[1]["id"]]
        either = await fhir(
            http, services, "intake", "/Observation", patient=patient_id, code="101698-9,70274-6", _count="1"
        )
        assert either["total"] == 2 and [r["id"] for r in entries(either)] == [found[2]["id"]]
        assert "code=101698-9%2C70274-6" in next(link["url"] for link in either["link"] if link["relation"] == "next")
        elsewhere = await fhir(
            http, services, "intake", "/Observation", patient=patient_id, code="http://snomed.info/sct|44261-6"
        )
        assert elsewhere["total"] == 0


def _parsed(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_patient_reads_back_with_the_registered_demographics(services: Stack) -> None:
    patient_id, body = await _screened_patient(services)
    # A clinician on the patient's care team (the therapist: the evaluation's booking names the prescriber).
    dr = await journeys.clinician(services, "therapist", "CO", "America/Denver")
    await journeys.join_care_team(services, patient_id, "intake", therapist_id=dr)
    clinician = clinician_token(dr, ["CO"])
    async with api_client(clinician, timeout=10) as http:
        [found] = entries(await fhir(http, services, "intake", "/Patient", _id=patient_id))
        assert await fhir(http, services, "intake", f"/Patient/{patient_id}") == found
    assert found["id"] == patient_id
    assert found["identifier"] == [
        {"use": "usual", "system": "https://carecoord.example/fhir/sid/patient-id", "value": patient_id}
    ]
    assert found["name"] == [{"use": "official", "family": body["last_name"], "given": [body["first_name"]]}]
    assert (found["gender"], found["birthDate"]) == ("female", body["date_of_birth"])
    assert found["telecom"] == [
        {"system": "phone", "value": body["phone"]},
        {"system": "email", "value": body["email"]},
    ]
    assert found["address"] == [{"use": "home", "state": "CO", "country": "US"}]
    assert body["address"]["line1"] not in str(found), "the street address is left out"


async def test_another_patients_token_is_refused_and_the_refusal_is_audited(services: Stack) -> None:
    patient_id, body = await _screened_patient(services)
    other = ac.patient(uuid.uuid4())
    for path, params, resource in (
        ("/fhir/R4/Observation", {"patient": patient_id}, "intake"),
        ("/fhir/R4/Patient", {"_id": patient_id}, "patient-demographics"),
        (f"/fhir/R4/Patient/{patient_id}", None, "patient-demographics"),
    ):
        response = await ac.call(services, "intake", ac.Request("GET", path, params=params), other)
        assert_problem(response, 403)
        assert body["last_name"] not in response.text
        await ac.assert_audited(services, "intake", other, "read", resource, uuid.UUID(patient_id), "denied")


async def test_an_unknown_id_is_a_404_problem(services: Stack) -> None:
    async with api_client(timeout=10) as http:
        for path in (
            f"/fhir/R4/Observation/{uuid.uuid4()}",
            "/fhir/R4/Observation/not-one-of-ours",
            f"/fhir/R4/Patient/{uuid.uuid4()}",
        ):
            assert_problem(await http.get(url(services, "intake", path)), 404)


async def test_a_bad_search_parameter_is_a_422_problem(services: Stack) -> None:
    async with api_client(timeout=10) as http:
        for path, params, field in (
            ("/fhir/R4/Observation", {"patient": "not-a-patient"}, "patient"),
            ("/fhir/R4/Observation", {}, "patient"),
            ("/fhir/R4/Observation", {"patient": str(uuid.uuid4()), "code": "x" * 201}, "code"),
            ("/fhir/R4/Patient", {"_id": "not-a-patient"}, "_id"),
        ):
            problem = assert_problem(await http.get(url(services, "intake", path), params=params), 422)
            assert f"query.{field}" in {e["field"] for e in problem["errors"]}, (params, problem)


async def test_the_capability_statement_lists_patient_and_observation_with_their_search_parameters(
    services: Stack,
) -> None:
    async with httpx.AsyncClient(timeout=10) as anonymous, api_client(timeout=10) as http:
        assert (await anonymous.get(url(services, "intake", "/fhir/R4/metadata"))).status_code == 401
        statement = await fhir(http, services, "intake", "/metadata")
    validated(statement)
    served = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    assert served == {"Patient": {"_id", "_count"}, "Observation": {"patient", "code", "_id", "_count"}}
