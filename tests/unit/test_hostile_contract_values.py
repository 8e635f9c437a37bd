"""Values the hostile-input suite found accepted by the contracts, now rejected at the consumer's edge."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from carecoord_contracts import Envelope
from carecoord_contracts.intake import PatientRegistered
from carecoord_contracts.scheduling import AppointmentBooked

ENVELOPE = {
    "event_id": str(uuid.uuid4()),
    "type": "PatientRegistered",
    "version": 1,
    "occurred_at": "2026-01-01T10:00:00Z",
    "producer": "intake",
    "patient_id": str(uuid.uuid4()),
    "correlation_id": str(uuid.uuid4()),
    "payload": {},
}


def test_a_well_formed_envelope_is_accepted() -> None:
    assert Envelope.model_validate(ENVELOPE).occurred_at.year == 2026


@pytest.mark.parametrize("occurred_at", ["2999-01-01T00:00:00Z", 12345, 1.5e9])
def test_an_envelope_from_the_future_or_with_a_numeric_date_is_rejected(occurred_at: object) -> None:
    with pytest.raises(ValidationError):
        Envelope.model_validate({**ENVELOPE, "occurred_at": occurred_at})


def test_a_payload_date_time_must_be_a_string_not_unix_time() -> None:
    fields = AppointmentBooked.model_fields
    assert "starts_at" in fields
    with pytest.raises(ValidationError, match="not a number"):
        AppointmentBooked.model_validate({"starts_at": 1_800_000_000})


@pytest.mark.parametrize("zone", ["ok\r\nX-Injected: 1", "'; DROP TABLE patients; --", "Mars/Olympus"])
def test_a_patient_time_zone_must_be_an_iana_zone(zone: str) -> None:
    with pytest.raises(ValidationError, match="IANA"):
        PatientRegistered.model_validate({"time_zone": zone})
    assert "time_zone" not in str(_errors({"time_zone": "America/New_York"}))


def _errors(payload: dict[str, object]) -> list[object]:
    try:
        PatientRegistered.model_validate(payload)
    except ValidationError as exc:
        return [e["loc"] for e in exc.errors()]
    return []
