"""Billing's FHIR R4 read API over the live stack: the Coverage and Claim of a course billed as
tests/e2e/test_billing_course.py bills one (events published as intake, dosing and scheduling
would; the claim goes out as an 837P and comes back paid through the simulated payer), read back
through /fhir/R4 by patient and by id, each resource validated and its mapped values checked
against billing's own reads of the same data.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from carecoord_contracts.common import AppointmentType, CoverageKind
from carecoord_contracts.intake import CoverageDeclared
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.e2e import journeys
from tests.e2e.test_billing_course import billing_exchange, complete, every, get, insured
from tests.fake_intake import FakeIntake
from tests.fhir_validation import entries, validated
from tests.kafka_io import publish_event

pytestmark = pytest.mark.e2e

__all__ = ["billing_exchange"]  # the module fixture: billing against a fake intake and its own clearinghouse

SERVICE = "billing"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


async def _claimed(stack: Stack, patient: uuid.UUID) -> list[dict[str, Any]] | None:
    claims = await every(stack, f"/v1/patients/{patient}/claims")
    return claims if claims and all(c["status"] == "paid" for c in claims) else None


async def test_an_insured_patients_coverage_and_claim_read_back_as_fhir(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    intake, _folders = billing_exchange
    patient = await insured(services, intake, "MFHIR01")  # TX, payer ACME1, plan diagnosis F43.10
    await complete(services, patient, uuid.uuid4(), AppointmentType.follow_up, 2)
    [claim] = await eventually(lambda: _claimed(services, patient), timeout=60, what="the visit claimed and paid")
    [charge] = await every(services, f"/v1/patients/{patient}/charges")
    declared = await get(services, f"/v1/patients/{patient}/coverage")

    async with api_client() as http:
        [coverage] = entries(await journeys.fhir(http, services, SERVICE, "/Coverage", patient=str(patient)))
        assert await journeys.fhir(http, services, SERVICE, f"/Coverage/{coverage['id']}") == coverage
        claims_bundle = await journeys.fhir(http, services, SERVICE, "/Claim", patient=f"Patient/{patient}")
        [found] = entries(claims_bundle)
        read = await journeys.fhir(http, services, SERVICE, f"/Claim/{claim['claim_id']}")

    assert coverage["id"] == declared["coverage_id"]
    assert coverage["status"] == "active"
    assert codes(coverage["type"]) == [("http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIP")]
    assert coverage["payor"] == [{"type": "Organization", "identifier": {"value": "ACME1"}, "display": "payer ACME1"}]
    assert coverage["beneficiary"] == {"reference": f"Patient/{patient}"}
    assert "subscriberId" not in coverage, "the member id is not in billing's coverage read"

    assert claims_bundle["total"] == 1 and found == read
    assert read["id"] == claim["claim_id"]
    assert (read["status"], read["use"], read["patient"]) == ("active", "claim", {"reference": f"Patient/{patient}"})
    assert codes(read["type"]) == [("http://terminology.hl7.org/CodeSystem/claim-type", "professional")]
    assert codes(read["priority"]) == [("http://terminology.hl7.org/CodeSystem/processpriority", "normal")]
    assert read["insurance"] == [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage['id']}"}}
    ]
    assert read["provider"]["identifier"]["system"] == "http://hl7.org/fhir/sid/us-npi"
    assert [codes(d["diagnosisCodeableConcept"]) for d in read["diagnosis"]] == [[(ICD10CM, "F43.10")]]
    assert [codes(i["productOrService"]) for i in read["item"]] == [[(CPT, line["cpt"])] for line in charge["lines"]]
    assert [codes(i["productOrService"])[0][1] for i in read["item"]] == ["99214", "90833"]
    assert {i["servicedDate"] for i in read["item"]} == {charge["service_date"]}
    assert [i["net"] for i in read["item"]] == [
        {"value": 220.0, "currency": "USD"},
        {"value": 100.0, "currency": "USD"},
    ]
    assert (
        read["total"] == {"value": claim["total_cents"] / 100, "currency": "USD"} == {"value": 320.0, "currency": "USD"}
    )
    assert not {"outcome", "payment", "adjudication"} & set(read), "the payer's answer is ClaimResponse's"


async def test_a_self_pay_patients_coverage_is_paid_by_the_patient(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    patient = uuid.uuid4()
    declared = CoverageDeclared(coverage_id=uuid.uuid4(), kind=CoverageKind.self_pay, state_of_residence="FL")
    await publish_event(services.kafka.bootstrap, "intake.patients", declared, patient, "intake")
    await eventually(lambda: _coverage_known(services, patient), what="the self-pay declaration recorded")
    async with api_client() as http:
        [coverage] = entries(await journeys.fhir(http, services, SERVICE, "/Coverage", patient=str(patient)))
        assert await journeys.fhir(http, services, SERVICE, f"/Coverage/{declared.coverage_id}") == coverage
        assert entries(await journeys.fhir(http, services, SERVICE, "/Claim", patient=str(patient))) == []
    assert (coverage["id"], coverage["status"]) == (str(declared.coverage_id), "active")
    assert codes(coverage["type"]) == [("http://terminology.hl7.org/CodeSystem/coverage-selfpay", "pay")]
    assert (
        coverage["payor"] == [{"reference": f"Patient/{patient}"}] and coverage["beneficiary"] == coverage["payor"][0]
    )


async def _coverage_known(stack: Stack, patient: uuid.UUID) -> bool:
    async with api_client() as http:
        response = await http.get(journeys.url(stack, SERVICE, f"/v1/patients/{patient}/coverage"))
    return response.status_code == 200


async def test_another_patients_claims_are_refused_and_audited_unknown_ids_are_404_bad_patients_422(
    services: Stack, billing_exchange: tuple[FakeIntake, Path]
) -> None:
    intake, _folders = billing_exchange
    patient = await insured(services, intake, "MFHIR02")
    await complete(services, patient, uuid.uuid4(), AppointmentType.follow_up, 3)
    [claim] = await eventually(lambda: _claimed(services, patient), timeout=60, what="the visit claimed and paid")
    someone_else = ac.patient(uuid.uuid4())

    search = ac.Request("GET", "/fhir/R4/Claim", params={"patient": str(patient)})
    refused = await ac.call(services, SERVICE, search, someone_else)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    await ac.assert_audited(services, SERVICE, someone_else, "read", "claims", patient, "denied")
    read = await ac.call(services, SERVICE, ac.Request("GET", f"/fhir/R4/Claim/{claim['claim_id']}"), someone_else)
    assert read.status_code == 403, read.text
    await ac.assert_audited(services, SERVICE, someone_else, "read", "claims", patient, "denied")
    own = await ac.call(services, SERVICE, search, ac.patient(patient))
    assert own.status_code == 200, own.text
    validated(own.json())
    assert own.json()["total"] == 1

    for path in (f"/fhir/R4/Claim/{uuid.uuid4()}", f"/fhir/R4/Coverage/{uuid.uuid4()}", "/fhir/R4/Coverage/not-ours"):
        missing = await ac.call(services, SERVICE, ac.Request("GET", path), ac.service())
        assert missing.status_code == 404, (path, missing.text)
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["status"] == 404
    for resource_type in ("Coverage", "Claim"):
        bad = ac.Request("GET", f"/fhir/R4/{resource_type}", params={"patient": "Patient/not-a-uuid"})
        invalid = await ac.call(services, SERVICE, bad, ac.service())
        assert invalid.status_code == 422, invalid.text
        assert invalid.headers["content-type"].startswith("application/problem+json")
