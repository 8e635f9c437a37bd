from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

import carecoord_contracts as contracts
from carecoord_contracts import CATALOG, Envelope, UnsupportedVersion, upcast
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.safety import TreatmentHoldRequested
from carecoord_contracts.topics import ALL_TOPICS, BUSINESS_TOPICS, SERVICES, topic_for_event


def _report(**overrides: object) -> SideEffectReportSubmitted:
    fields = {"report_id": uuid.uuid4(), "symptoms": ["nausea"], "grade": 2, **overrides}
    return SideEffectReportSubmitted(**fields)  # type: ignore[arg-type]


def test_a_caused_event_inherits_the_correlation_and_names_its_cause() -> None:
    patient = uuid.uuid4()
    first = Envelope.wrap(_report(), patient_id=patient, producer="patient-app")
    assert first.correlation_id == first.event_id and first.causation_id is None
    hold = TreatmentHoldRequested(hold_id=uuid.uuid4(), review_id=uuid.uuid4(), reason="severe", rule_version="1")
    caused = Envelope.wrap(hold, patient_id=patient, producer="safety", cause=first)
    assert caused.correlation_id == first.correlation_id
    assert caused.causation_id == first.event_id
    assert (caused.type, caused.version) == ("TreatmentHoldRequested", 1)


def test_key_is_the_patient_id_and_headers_carry_no_payload() -> None:
    patient = uuid.uuid4()
    envelope = Envelope.wrap(_report(note="my name is Canary McCanaryface"), patient_id=patient, producer="patient-app")
    assert envelope.key == str(patient).encode()
    assert set(envelope.headers()) == {"event-id", "event-type", "event-version", "producer"}
    assert "Canary" not in json.dumps(envelope.headers())


def test_envelope_rejects_naive_timestamps_and_non_finite_numbers() -> None:
    good = Envelope.wrap(_report(), patient_id=uuid.uuid4(), producer="patient-app").model_dump(mode="json")
    with pytest.raises(ValidationError):
        Envelope.model_validate({**good, "occurred_at": "2026-11-27T10:00:00"})
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(json.dumps({**good, "version": "__nan__"}).replace('"__nan__"', "NaN"))
    with pytest.raises(ValidationError):
        Envelope.model_validate({**good, "type": "lower; DROP"})


def test_payload_validation_bounds_strings_and_enumerates_codes() -> None:
    with pytest.raises(ValidationError):
        _report(note="x" * 2001)
    with pytest.raises(ValidationError):
        _report(symptoms=["Chest Pain"])
    with pytest.raises(ValidationError):
        _report(grade=6)
    assert _report(extra_field_from_a_newer_producer=1).grade == 2


def test_every_event_a_topic_carries_is_in_the_catalog_and_on_exactly_one_topic() -> None:
    carried = [e for t in BUSINESS_TOPICS for e in t.events]
    assert sorted(carried) == sorted(set(carried)), "an event type lives on one topic"
    assert set(carried) == set(CATALOG)
    for event_type in CATALOG:
        assert event_type in topic_for_event(event_type).events


def test_every_consumer_named_by_a_topic_is_a_service_and_names_are_unique() -> None:
    assert len({t.name for t in ALL_TOPICS}) == len(ALL_TOPICS)
    for topic in BUSINESS_TOPICS:
        assert set(topic.consumers) <= set(SERVICES)
        assert topic.key == "patient_id"


def test_upcast_walks_registered_steps_and_refuses_unknown_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = {"hold_id": str(uuid.uuid4())}
    assert upcast("TreatmentHoldRequested", 1, payload) is payload
    with pytest.raises(UnsupportedVersion):
        upcast("TreatmentHoldRequested", 2, payload)

    class HoldV2(TreatmentHoldRequested):
        version = 2

    monkeypatch.setitem(contracts.CATALOG, "TreatmentHoldRequested", HoldV2)
    with pytest.raises(UnsupportedVersion, match="no upcaster"):
        upcast("TreatmentHoldRequested", 1, payload)
    monkeypatch.setitem(contracts.UPCASTERS, ("TreatmentHoldRequested", 1), lambda p: {**p, "upcast": True})
    assert upcast("TreatmentHoldRequested", 1, payload)["upcast"] is True
