"""The input: ~1 KB SideEffectReportSubmitted envelopes, written once, read by every arm."""

from __future__ import annotations

import random
import uuid

from aiokafka import AIOKafkaProducer

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted

from .infra import IN_TOPIC

SYMPTOMS = (
    "nausea",
    "dizziness",
    "dissociation",
    "headache",
    "anxiety",
    "raised_blood_pressure",
    "fatigue",
    "blurred_vision",
)
PATIENTS = 200


def make_envelope(rng: random.Random, patients: list[uuid.UUID]) -> Envelope:
    # The note is free text the patient typed; its length brings the envelope to ~1 KB.
    event = SideEffectReportSubmitted(
        report_id=uuid.UUID(int=rng.getrandbits(128)),
        symptoms=rng.sample(SYMPTOMS, 4),
        grade=rng.randint(1, 3),
        onset_minutes_after_dose=rng.randint(0, 240),
        note="x" * 560,
    )
    return Envelope.wrap(event, patient_id=rng.choice(patients), producer="patient-app")


async def prefill(bootstrap: str, count: int, seed: int = 11) -> int:
    """Write ``count`` envelopes to the input topic; returns the mean value size in bytes."""
    rng = random.Random(seed)
    patients = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(PATIENTS)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    total = 0
    try:
        pending = []
        for _ in range(count):
            env = make_envelope(rng, patients)
            value = env.model_dump_json().encode()
            total += len(value)
            headers = [(k, v.encode()) for k, v in env.headers().items()]
            pending.append(await producer.send(IN_TOPIC.name, value, key=env.key, headers=headers))
        for fut in pending:
            await fut
    finally:
        await producer.stop()
    return total // max(count, 1)
