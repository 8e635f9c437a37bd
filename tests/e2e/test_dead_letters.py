"""Malformed events on a service's input topic go to its dead-letter topic with a
reason and their origin; the consumer moves on and processes what follows."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from carecoord_contracts import Envelope
from carecoord_contracts.safety import TreatmentHoldRequested
from carecoord_devstack.stack import Stack
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import publish_envelope, publish_raw, read_topic

pytestmark = pytest.mark.e2e


def _hold(patient: uuid.UUID) -> Envelope:
    event = TreatmentHoldRequested(
        hold_id=uuid.uuid4(), review_id=uuid.uuid4(), reason="severe_side_effect", rule_version="t"
    )
    return Envelope.wrap(event, patient_id=patient, producer="safety")


async def test_malformed_events_are_dead_lettered_and_the_next_valid_one_is_processed(services: Stack) -> None:
    bootstrap = services.kafka.bootstrap
    patient = uuid.uuid4()
    key = str(patient).encode()
    await journeys.active_plan(services, patient)

    valid = _hold(patient).model_dump(mode="json")
    bad_payload = {**valid, "event_id": str(uuid.uuid4()), "payload": {**valid["payload"], "hold_id": "not-a-uuid"}}
    too_new = {**valid, "event_id": str(uuid.uuid4()), "version": 99}
    nan_version = json.dumps({**valid, "event_id": str(uuid.uuid4())}).replace('"version": 1', '"version": NaN')
    cases = {
        "invalid_envelope": [
            b"\x00\xffnot json at all",
            json.dumps({"type": "TreatmentHoldRequested"}).encode(),
            nan_version.encode(),
            b"[" * 10_000 + b"]" * 10_000,  # deeper than any JSON decoder recurses
        ],
        "invalid_payload": [json.dumps(bad_payload).encode()],
        "unsupported_version": [json.dumps(too_new).encode()],
    }
    offsets: dict[tuple[int, int], str] = {}
    for reason, values in cases.items():
        for value in values:
            meta = await publish_raw(bootstrap, "safety.holds", value, key)
            offsets[(meta.partition, meta.offset)] = reason

    # An event type dosing does not know (yet) is skipped, not dead-lettered;
    # an extra field it does not know is ignored.
    unknown_type = {**valid, "event_id": str(uuid.uuid4()), "type": "TreatmentHoldExtended"}
    await publish_raw(bootstrap, "safety.holds", json.dumps(unknown_type).encode(), key)
    extra_field = _hold(patient).model_dump(mode="json")
    extra_field["payload"]["added_in_a_later_minor"] = "ignored"
    await publish_envelope(bootstrap, "safety.holds", Envelope.model_validate(extra_field))

    paused = await eventually(lambda: _paused(services, patient), what="the valid hold behind the bad ones processed")
    assert len(paused["open_hold_ids"]) == 1

    letters = await eventually(
        lambda: _letters_for(bootstrap, key, len(offsets)), what="every malformed event dead-lettered"
    )
    got = {(letter["original_partition"], letter["original_offset"]): letter["reason"] for letter in letters}
    assert got == offsets
    for letter in letters:
        assert letter["service"] == "dosing" and letter["original_topic"] == "safety.holds"
        assert base64.b64decode(letter["original_value_b64"]), "the original bytes are kept for replay"
    invalid_payload = next(letter for letter in letters if letter["reason"] == "invalid_payload")
    assert invalid_payload["detail"]["errors"][0]["loc"] == "hold_id"
    assert "not-a-uuid" not in json.dumps(invalid_payload["detail"]), "errors never echo the input values"


async def _paused(stack: Stack, patient: uuid.UUID) -> dict | None:
    plan = await journeys.plan(stack, patient)
    return plan if plan["status"] == "paused" else None


async def _letters_for(bootstrap: str, key: bytes, expected: int) -> list[dict] | None:
    letters = [json.loads(r.value) for r in await read_topic(bootstrap, "deadletter.dosing") if r.key == key]
    return letters if len(letters) >= expected else None
