"""A dead letter always fits on the broker: an oversized original is kept truncated, and marked so."""

from __future__ import annotations

import json
from typing import Any

from aiokafka import ConsumerRecord

from carecoord_contracts.deadletter import DeadLetter
from carecoord_shared.messaging.deadletter import MAX_KEPT_ORIGINAL_BYTES, DeadLetterer

BROKER_LIMIT = 1024 * 1024


def _record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("safety.holds", 0, 7, 0, 0, b"key", value, None, 3, len(value), [])


async def _letter_for(value: bytes) -> tuple[bytes, DeadLetter]:
    sent: list[bytes] = []

    async def publish(_topic: str, data: bytes, _key: bytes | None, _headers: dict[str, str]) -> Any:
        sent.append(data)

    await DeadLetterer("dosing", publish).send(_record(value), reason="invalid_envelope", detail={})
    [data] = sent
    return data, DeadLetter.model_validate_json(data)


async def test_a_near_limit_original_is_truncated_so_the_letter_fits_on_the_broker() -> None:
    original = b"A" * 900_000
    data, letter = await _letter_for(original)
    assert len(data) < BROKER_LIMIT
    assert letter.original_truncated and letter.original_size == len(original)
    assert letter.original_value() == original[:MAX_KEPT_ORIGINAL_BYTES]


async def test_an_ordinary_original_is_kept_whole_for_replay() -> None:
    original = json.dumps({"type": "X"}).encode()
    _data, letter = await _letter_for(original)
    assert not letter.original_truncated
    assert letter.original_value() == original
