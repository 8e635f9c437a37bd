"""Billing's FHIR mapping (carecoord_billing/fhir.py): rows in, R4 Coverage and Claim out, valid and coded."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from carecoord_billing import fhir
from carecoord_billing.settings import ProviderIdentity
from tests.fhir_validation import validated

PATIENT = uuid.uuid4()
PROVIDER = ProviderIdentity()


def coverage_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "patient_id": PATIENT,
        "coverage_id": uuid.uuid4(),
        "kind": "insurance",
        "payer_id": "ACME1",
        "state_of_residence": "TX",
        "billable_to_payer": True,
        "verification_status": "active",
        "declared_at": datetime(2026, 11, 1, tzinfo=UTC),
        "verified_at": datetime(2026, 11, 1, 0, 5, tzinfo=UTC),
    }
    return {**row, **overrides}


def claim_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "claim_id": uuid.uuid4(),
        "claim_number": "ABCDEF0123456789ABCD",
        "charge_id": uuid.uuid4(),
        "patient_id": PATIENT,
        "payer_id": "ACME1",
        "interchange_control_number": 7,
        "total_cents": 32000,
        "diagnosis_codes": ["F4310", "F331"],
        "status": "paid",
        "paid_cents": 32000,
        "patient_responsibility_cents": 0,
        "created_at": datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        "submitted_at": datetime(2026, 11, 20, 15, 1, tzinfo=UTC),
        "adjudicated_at": None,
        "lines": [{"cpt": "99214", "cents": 22000}, {"cpt": "90833", "cents": 10000}],
        "modifiers": ["95"],
        "place_of_service": "10",
        "service_date": date(2026, 11, 20),
    }
    return {**row, **overrides}


def codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


@pytest.mark.parametrize(
    ("verification", "status"),
    [("unverified", "active"), ("active", "active"), ("unknown", "active"), ("inactive", "cancelled")],
)
def test_a_coverage_the_payer_reports_inactive_is_cancelled_and_otherwise_active(
    verification: str, status: str
) -> None:
    resource = fhir.coverage(coverage_row(verification_status=verification))
    validated(resource)
    assert resource["status"] == status


def test_insurance_is_a_health_insurance_plan_paid_by_the_payer_without_a_member_id() -> None:
    row = coverage_row()
    resource = fhir.coverage(row)
    validated(resource)
    assert resource["id"] == str(row["coverage_id"])
    assert codes(resource["type"]) == [(fhir.ACT_CODE, "HIP")]
    assert resource["payor"] == [{"type": "Organization", "identifier": {"value": "ACME1"}, "display": "payer ACME1"}]
    assert resource["beneficiary"] == {"reference": f"Patient/{PATIENT}"}
    assert "subscriberId" not in resource and "period" not in resource


def test_self_pay_is_paid_by_the_patient() -> None:
    resource = fhir.coverage(coverage_row(kind="self_pay", payer_id=None, verification_status="unverified"))
    validated(resource)
    assert codes(resource["type"]) == [(fhir.SELF_PAY, "pay")]
    assert resource["payor"] == [{"reference": f"Patient/{PATIENT}"}]


def test_insurance_without_a_declared_payer_still_names_a_payor() -> None:
    resource = fhir.coverage(coverage_row(payer_id=None, billable_to_payer=False))
    validated(resource)
    assert resource["payor"] == [{"type": "Organization", "display": "payer not declared"}]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("building", "draft"), ("submitted", "active"), ("paid", "active"), ("denied", "active"), ("reversed", "active")],
)
def test_a_claim_is_a_draft_until_its_837p_is_written_and_active_after(status: str, expected: str) -> None:
    resource = fhir.claim(claim_row(status=status), coverage_row(), PROVIDER)
    validated(resource)
    assert resource["status"] == expected


def test_a_claim_carries_its_codes_amounts_and_coverage_but_no_adjudication() -> None:
    covered = coverage_row()
    row = claim_row()
    resource = fhir.claim(row, covered, PROVIDER)
    validated(resource)
    assert resource["id"] == str(row["claim_id"])
    assert (resource["use"], codes(resource["type"]), codes(resource["priority"])) == (
        "claim",
        [(fhir.CLAIM_TYPE, "professional")],
        [(fhir.PRIORITY, "normal")],
    )
    assert resource["patient"] == {"reference": f"Patient/{PATIENT}"}
    assert resource["created"] == "2026-11-20T15:00:00+00:00"
    assert resource["provider"]["identifier"] == {"system": fhir.NPI, "value": PROVIDER.npi}
    assert resource["insurance"] == [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{covered['coverage_id']}"}}
    ]
    assert [codes(d["diagnosisCodeableConcept"]) for d in resource["diagnosis"]] == [
        [(fhir.ICD10CM, "F43.10")],
        [(fhir.ICD10CM, "F33.1")],
    ]
    assert [codes(i["productOrService"]) for i in resource["item"]] == [[(fhir.CPT, "99214")], [(fhir.CPT, "90833")]]
    assert [(i["servicedDate"], i["net"], i["modifier"]) for i in resource["item"]] == [
        ("2026-11-20", {"value": 220.0, "currency": "USD"}, [{"coding": [{"system": fhir.CPT, "code": "95"}]}]),
        ("2026-11-20", {"value": 100.0, "currency": "USD"}, [{"coding": [{"system": fhir.CPT, "code": "95"}]}]),
    ]
    assert resource["total"] == {"value": 320.0, "currency": "USD"}
    assert not {"outcome", "payment", "adjudication"} & set(resource)


def test_a_claim_whose_patient_has_since_declared_other_coverage_does_not_point_at_it() -> None:
    for current in (coverage_row(payer_id="OTHER2"), coverage_row(kind="self_pay", payer_id=None), None):
        resource = fhir.claim(claim_row(), current, PROVIDER)
        validated(resource)
        [insurance] = resource["insurance"]
        assert "reference" not in insurance["coverage"] and "ACME1" in insurance["coverage"]["display"]


def test_a_claim_without_recorded_diagnoses_has_none_and_points_at_none() -> None:
    resource = fhir.claim(claim_row(diagnosis_codes=None), coverage_row(), PROVIDER)
    validated(resource)
    assert "diagnosis" not in resource
    assert all("diagnosisSequence" not in item for item in resource["item"])


@pytest.mark.parametrize(
    ("code", "system"),
    [("99214", fhir.CPT), ("0591T", fhir.CPT), ("G2012", fhir.HCPCS), ("J2800", fhir.HCPCS)],
)
def test_hcpcs_level_ii_codes_are_coded_as_hcpcs_and_the_rest_as_cpt(code: str, system: str) -> None:
    assert fhir.procedure_system(code) == system


@pytest.mark.parametrize(
    ("stored", "published"), [("F4310", "F43.10"), ("F331", "F33.1"), ("F32A", "F32.A"), ("F99", "F99")]
)
def test_icd10cm_codes_are_written_with_their_dot(stored: str, published: str) -> None:
    assert fhir.icd10cm(stored) == published
