"""The relay's advisory lock and the per-patient locks live in separate key spaces.

Under one flat key space a patient id can be found whose lock is the relay's
(crc32 is linear over GF(2), so 16 bytes with a chosen crc32 are a few XORs
away): a transaction holding that patient's lock stalled the service's whole
outbox.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import AsyncIterator

import pytest

from carecoord_devstack.stack import Stack
from carecoord_shared.messaging import locks
from tests.integration.outbox_harness import Outbox

SERVICE = "relaytest"  # the harness's relays lock as this service


def crc32_preimage(target: int, length: int = 16) -> bytes:
    """``length`` bytes whose crc32 is ``target``: solve crc(base ^ x) = target over GF(2)."""
    base = bytes(length)
    columns = []  # (how flipping one bit changes the crc, that bit as a mask over the message)
    for bit in range(length * 8):
        flipped = bytearray(base)
        flipped[bit // 8] ^= 1 << (bit % 8)
        columns.append((zlib.crc32(bytes(flipped)) ^ zlib.crc32(base), 1 << bit))
    want, basis = zlib.crc32(base) ^ target, {}  # basis: pivot bit -> (crc delta, message mask)
    for column_delta, column_mask in columns:
        delta, mask = column_delta, column_mask  # reduced against the basis below
        for pivot, (b_delta, b_mask) in basis.items():
            if delta >> pivot & 1:
                delta, mask = delta ^ b_delta, mask ^ b_mask
        if delta:
            pivot = delta.bit_length() - 1
            for other, (o_delta, o_mask) in list(basis.items()):
                if o_delta >> pivot & 1:
                    basis[other] = (o_delta ^ delta, o_mask ^ mask)
            basis[pivot] = (delta, mask)
    flips = 0
    for pivot, (delta, mask) in basis.items():
        if want >> pivot & 1:
            want, flips = want ^ delta, flips ^ mask
    assert want == 0
    return bytes(b ^ (flips >> (8 * i) & 0xFF) for i, b in enumerate(base))


def patient_sharing_the_old_relay_key() -> uuid.UUID:
    """A patient whose lock, as both were computed before (one bigint key space), was the relay's."""
    relay_key = zlib.crc32(f"carecoord.outbox.{SERVICE}".encode())
    assert relay_key < 2**31, "the old patient keys only reached [-2^31, 2^31)"
    patient = uuid.UUID(bytes=crc32_preimage(relay_key + 2**31))
    assert zlib.crc32(patient.bytes) - 2**31 == relay_key
    return patient


def patient_with_the_relays_object_id() -> uuid.UUID:
    """A patient whose lock has the same second int as the relay's: only the class tells them apart."""
    return uuid.UUID(bytes=crc32_preimage(zlib.crc32(f"carecoord.outbox.{SERVICE}".encode())))


@pytest.fixture
async def outbox(stack: Stack) -> AsyncIterator[Outbox]:
    box = await Outbox.create(stack)
    yield box
    await box.dispose()


@pytest.mark.parametrize("lookalike", [patient_sharing_the_old_relay_key, patient_with_the_relays_object_id])
async def test_a_patient_lock_never_holds_up_the_relay(outbox: Outbox, lookalike: object) -> None:
    patient = lookalike()  # type: ignore[operator]
    await outbox.insert("safety.reports", str(uuid.uuid4()))
    relay = outbox.relay()
    async with outbox.uow().transaction() as tx:
        await tx.lock_patient(patient)  # held until this block ends
        sent = await asyncio.wait_for(relay.drain_once(), 20)
    assert sent == 1


def test_each_use_has_a_class_of_its_own() -> None:
    relay_class, relay_id = locks.relay_lock(SERVICE)
    patient_class, patient_id = locks.patient_lock(patient_with_the_relays_object_id())
    assert relay_id == patient_id and relay_class != patient_class
    assert len({locks.OUTBOX_RELAY, locks.PATIENT}) == 2
