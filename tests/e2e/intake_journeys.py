"""Intake steps of a patient journey, over intake's real HTTP API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.e2e.journeys import url

NO_CONDITIONS = {
    code: False
    for code in (
        "aneurysmal_vascular_disease",
        "arteriovenous_malformation",
        "intracerebral_haemorrhage_history",
        "uncontrolled_hypertension",
        "severe_cardiovascular_disease",
        "active_psychosis",
        "active_mania",
        "pregnant",
        "breastfeeding",
        "ketamine_hypersensitivity",
        "past_psychosis_stable",
        "substance_use_disorder_in_recovery",
        "significant_liver_disease",
        "interstitial_cystitis_or_urinary_symptoms",
        "current_suicidal_thoughts",
    )
}


def registration(**overrides: Any) -> dict[str, Any]:
    """A registration body for an adult in Colorado (served by the local default configuration)."""
    return {
        "external_id": f"app-{uuid.uuid4()}",
        "first_name": "Wilhelmina",
        "last_name": "Quackenbush",
        "date_of_birth": "1984-07-19",
        "sex": "F",
        "email": "wilhelmina.q@example.org",
        "phone": "+1 303 555 0142",
        "address": {"line1": "742 Evergreen Terrace", "city": "Denver", "state": "CO", "postal_code": "80202"},
        "state_of_residence": "CO",
        "time_zone": "America/Denver",
        **overrides,
    }


def eligible_steps(**overrides: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path under the patient, body) of every intake step after registration, for an eligible patient."""
    steps = {
        "phq9": ("POST", "/assessments", {"instrument": "phq9", "answers": [2, 2, 1, 2, 1, 1, 2, 1, 0]}),
        "gad7": ("POST", "/assessments", {"instrument": "gad7", "answers": [1, 1, 1, 0, 1, 0, 1]}),
        "pcl5": ("POST", "/assessments", {"instrument": "pcl5", "answers": [1] * 20}),
        "screening": ("POST", "/medical-screening", {"answers": NO_CONDITIONS}),
        "blood_pressure": (
            "POST",
            "/blood-pressure",
            {"systolic": 122, "diastolic": 78, "measured_at": datetime.now(UTC).isoformat()},
        ),
        "coverage": (
            "PUT",
            "/coverage",
            {"kind": "insurance", "payer_id": "BCBSCO", "member_id": "XQZ-99817", "plan": "Silver PPO"},
        ),
    }
    steps.update(overrides)
    return list(steps.values())


async def register(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    async with api_client(timeout=10) as http:
        return await http.post(url(stack, "intake", "/v1/patients"), json=body)


async def step(stack: Stack, patient_id: str, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async with api_client(timeout=10) as http:
        return await http.request(method, url(stack, "intake", f"/v1/patients/{patient_id}{path}"), json=body)


async def complete_intake(stack: Stack, body: dict[str, Any] | None = None, **step_overrides: Any) -> str:
    """Register and go through every intake step; returns the patient id."""
    registered = await register(stack, body or registration())
    assert registered.status_code == 201, registered.text
    patient_id: str = registered.json()["patient_id"]
    for method, path, step_body in eligible_steps(**step_overrides):
        response = await step(stack, patient_id, method, path, step_body)
        assert response.status_code == 201, (path, response.text)
    return patient_id


async def status(stack: Stack, patient_id: str) -> dict[str, Any]:
    async with api_client(timeout=10) as http:
        response = await http.get(url(stack, "intake", f"/v1/patients/{patient_id}/intake"))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]
