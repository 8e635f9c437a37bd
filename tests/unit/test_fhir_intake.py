"""Intake's FHIR mapping (carecoord_intake/fhir.py), pure: rows and demographics in, checked FHIR JSON out."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from carecoord_contracts.common import Instrument
from carecoord_intake import fhir, scoring
from carecoord_intake.phi import Demographics
from carecoord_shared.http.fhir import SCREENING_TOTALS, code_matches
from tests.fhir_validation import validated

PATIENT_ID = uuid.uuid4()


def _who(sex: str = "F") -> Demographics:
    return Demographics(
        first_name="Wilhelmina",
        last_name="Quackenbush",
        date_of_birth=date(1984, 7, 19),
        sex=sex,
        email="wilhelmina.q@example.org",
        phone="+1 303 555 0142",
        address={"line1": "742 Evergreen Terrace", "city": "Denver", "state": "CO", "postal_code": "80202"},
    )


def _assessment(instrument: Instrument, answers: list[int]) -> dict[str, Any]:
    score = scoring.score(instrument, answers)
    return {
        "assessment_id": uuid.uuid4(),
        "patient_id": PATIENT_ID,
        "instrument": instrument.value,
        "answers": answers,
        "total": score.total,
        "severity_band": score.severity_band,
        "item9_positive": score.item9_positive,
        "provisional_ptsd": score.provisional_ptsd,
        "submitted_at": datetime(2026, 12, 1, 15, 30, tzinfo=UTC),
    }


@pytest.mark.parametrize(("sex", "gender"), [("F", "female"), ("M", "male"), ("U", "unknown")])
def test_the_patient_carries_the_demographics_with_intakes_sex_as_the_administrative_gender(
    sex: str, gender: str
) -> None:
    row = {"patient_id": PATIENT_ID, "state_of_residence": "NY"}
    resource = fhir.patient(row, _who(sex))
    validated(resource)
    assert resource["id"] == str(PATIENT_ID)
    assert resource["identifier"] == [
        {"use": "usual", "system": fhir.PATIENT_IDENTIFIER_SYSTEM, "value": str(PATIENT_ID)}
    ]
    assert resource["name"] == [{"use": "official", "family": "Quackenbush", "given": ["Wilhelmina"]}]
    assert resource["gender"] == gender
    assert resource["birthDate"] == "1984-07-19"
    assert {(t["system"], t["value"]) for t in resource["telecom"]} == {
        ("phone", "+1 303 555 0142"),
        ("email", "wilhelmina.q@example.org"),
    }
    # The state of residence (moved to NY), not the registered postal address; no street, city or postcode.
    assert resource["address"] == [{"use": "home", "state": "NY", "country": "US"}]


@pytest.mark.parametrize(
    ("instrument", "answers", "loinc", "total", "band"),
    [
        (Instrument.phq9, [2, 2, 1, 2, 1, 1, 2, 1, 0], "44261-6", 12, "moderate"),
        (Instrument.gad7, [1, 1, 1, 0, 1, 0, 1], "70274-6", 5, "mild"),
        (Instrument.pcl5, [2] * 20, "101698-9", 40, "probable_ptsd"),
    ],
)
def test_an_assessment_is_a_final_survey_observation_of_the_instruments_loinc_total(
    instrument: Instrument, answers: list[int], loinc: str, total: int, band: str
) -> None:
    row = _assessment(instrument, answers)
    resource = fhir.observation(row)
    validated(resource)
    assert resource["id"] == str(row["assessment_id"])
    assert resource["status"] == "final"
    assert resource["category"][0]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey", "display": "Survey"}
    ]
    [code] = resource["code"]["coding"]
    assert (code["system"], code["code"]) == ("http://loinc.org", loinc)
    assert resource["valueInteger"] == total
    assert resource["subject"] == {"reference": f"Patient/{PATIENT_ID}"}
    assert resource["effectiveDateTime"] == "2026-12-01T15:30:00+00:00"
    [interpretation] = resource["interpretation"][0]["coding"]
    assert interpretation["system"] == f"{fhir.CODE_SYSTEM_BASE}/{instrument.value}-severity"
    assert interpretation["code"] == band


def test_the_loinc_totals_agree_with_the_ones_scoring_announces() -> None:
    for spec in scoring.SPECS.values():
        if spec.loinc_total is not None:
            assert SCREENING_TOTALS[spec.instrument.value][1] == spec.loinc_total
    assert set(SCREENING_TOTALS) == {i.value for i in Instrument}


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ("44261-6", True),
        ("http://loinc.org|44261-6", True),
        ("|44261-6", False),
        ("70274-6,44261-6", True),
        ("70274-6", False),
        ("http://snomed.info/sct|44261-6", False),
        ("http://loinc.org|", False),
    ],
)
def test_the_code_search_matches_a_token_with_or_without_its_system(value: str, matches: bool) -> None:
    resource = fhir.observation(_assessment(Instrument.phq9, [0] * 9))
    assert code_matches(resource, value) is matches
