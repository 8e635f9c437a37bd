"""Scheduling's FHIR mapping (carecoord_scheduling/fhir.py): statuses, codes, participants and the search filter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.exceptions import RequestValidationError

from carecoord_contracts.common import AppointmentType
from carecoord_scheduling import fhir
from carecoord_shared.http.fhir import CODE_SYSTEM_BASE
from tests.fhir_validation import validated

START = datetime(2031, 3, 4, 16, 0, tzinfo=UTC)


def row(**overrides: Any) -> dict[str, Any]:
    return {
        "appointment_id": uuid.uuid4(),
        "patient_id": uuid.uuid4(),
        "clinician_id": "dr-ada",
        "appointment_type": "dosing_session",
        "status": "booked",
        "starts_at": START,
        "ends_at": START + timedelta(minutes=150),
        "cancel_reason": None,
        "created_at": START - timedelta(days=3),
    } | overrides


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("booked", "booked"), ("completed", "fulfilled"), ("cancelled", "cancelled"), ("no_show", "noshow")],
)
def test_each_appointment_status_maps_to_its_appointment_status_code(ours: str, theirs: str) -> None:
    resource = fhir.appointment_resource(row(status=ours, cancel_reason="patient_request"))
    validated(resource)
    assert resource["status"] == theirs


def test_a_status_scheduling_does_not_give_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="rescheduled"):
        fhir.appointment_resource(row(status="rescheduled"))


def test_a_booked_appointment_carries_its_times_type_and_both_participants() -> None:
    booked = row()
    resource = fhir.appointment_resource(booked)
    validated(resource)
    assert resource["id"] == str(booked["appointment_id"])
    assert (resource["start"], resource["end"], resource["minutesDuration"]) == (
        "2031-03-04T16:00:00+00:00",
        "2031-03-04T18:30:00+00:00",
        150,
    )
    assert resource["created"] == "2031-03-01T16:00:00+00:00"
    assert resource["appointmentType"]["coding"] == [
        {"system": f"{CODE_SYSTEM_BASE}/appointment-type", "code": "dosing_session", "display": "Dosing session"}
    ]
    assert resource["participant"] == [
        {"actor": {"reference": f"Patient/{booked['patient_id']}"}, "required": "required", "status": "accepted"},
        {"actor": {"reference": "Practitioner/dr-ada"}, "required": "required", "status": "accepted"},
    ]
    assert "cancelationReason" not in resource


def test_only_a_cancelled_appointment_has_a_cancelation_reason_in_our_local_code_system() -> None:
    resource = fhir.appointment_resource(row(status="cancelled", cancel_reason="treatment_hold"))
    assert resource["cancelationReason"]["coding"] == [
        {"system": f"{CODE_SYSTEM_BASE}/appointment-cancel-reason", "code": "treatment_hold"}
    ]


def test_every_appointment_type_has_a_local_code_and_a_follow_up_also_its_v2_code() -> None:
    for kind in AppointmentType:
        codings = fhir.appointment_type(kind.value)["coding"]
        assert codings[0]["code"] == kind.value and codings[0]["display"], kind
    assert fhir.appointment_type("follow_up")["coding"][1] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0276",
        "code": "FOLLOWUP",
        "display": "A follow up visit from a previous appointment",
    }
    assert len(fhir.appointment_type("urgent_review")["coding"]) == 1  # not an EMERGENCY


def test_a_clinician_id_that_is_not_a_fhir_id_is_given_as_an_identifier() -> None:
    resource = fhir.appointment_resource(row(clinician_id="dr_ada:co"))
    validated(resource)
    assert resource["participant"][1]["actor"] == {
        "type": "Practitioner",
        "identifier": {"system": fhir.CLINICIAN_ID_SYSTEM, "value": "dr_ada:co"},
    }


def _kept(statuses: list[str], dates: list[str]) -> list[str]:
    keep, _echo = fhir.appointment_filter(statuses, dates)
    resources = [
        fhir.appointment_resource(
            row(appointment_id=name, status=status, starts_at=start, ends_at=start + timedelta(hours=1))
        )
        for name, status, start in (
            ("a", "booked", START - timedelta(days=1)),
            ("b", "cancelled", START),
            ("c", "completed", START + timedelta(days=1)),
        )
    ]
    return [r["id"] for r in resources if keep(r)]


def test_the_search_narrows_by_status_and_by_start_with_ge_and_le() -> None:
    assert _kept([], []) == ["a", "b", "c"]
    assert _kept(["cancelled,fulfilled"], []) == ["b", "c"]
    assert _kept(["booked"], ["ge2031-03-04"]) == []
    assert _kept([], ["ge2031-03-04"]) == ["b", "c"]
    assert _kept([], ["le2031-03-04"]) == ["a", "b"]  # a date's le is up to the end of its (UTC) day
    assert _kept([], ["ge2031-03-04T16:00:00+00:00", "le2031-03-04T16:00:00+00:00"]) == ["b"]
    assert _kept([], ["ge2031-03-04T16:00:01+00:00"]) == ["c"]
    assert _kept([], ["le2031-03-04T09:00:00-07:00"]) == ["a", "b"]  # 16:00 UTC


@pytest.mark.parametrize(
    ("statuses", "dates"),
    [
        (["bogus"], []),
        ([","], []),
        ([], ["eq2031-03-04"]),
        ([], ["2031-03-04"]),
        ([], ["ge2031-13-04"]),
        ([], ["ge2031-03-04T16:00:00"]),  # no offset
        ([], ["ge2031-03-04", "ge2031-03-05"]),
    ],
)
def test_a_bad_status_or_date_is_a_422(statuses: list[str], dates: list[str]) -> None:
    with pytest.raises(RequestValidationError):
        fhir.appointment_filter(statuses, dates)


def test_the_search_parameters_are_repeated_in_the_links() -> None:
    _keep, echoed = fhir.appointment_filter(["booked"], ["ge2031-03-04", "le2031-03-05"])
    assert echoed == [("status", "booked"), ("date", "ge2031-03-04"), ("date", "le2031-03-05")]
