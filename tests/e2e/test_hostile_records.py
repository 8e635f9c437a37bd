"""Issue 19's reproduction with every service running: valid reports on two partitions, then a
record whose header key is not UTF-8 on the third (what `kcat -H $'\\xff\\xfe=x'` writes).

Before the fix, safety lost two of the six reports, partition 0 stayed stuck behind the bad
record for good, every later fetch cycle lost whatever it had collected elsewhere, and
`carecoord dlq list` crashed on the topic. Now nothing is lost: every report takes effect,
the bad record too (it is a valid report; only a header key was not text), and the operator
commands read the topic without a traceback.
"""

from __future__ import annotations

import uuid

import pytest

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_devstack.stack import Stack
from tests.conftest import eventually
from tests.e2e.cli_io import carecoord, environment
from tests.kafka_io import events_for, group_caught_up
from tests.raw_records import RawRecord, produce_raw

pytestmark = pytest.mark.e2e

TOPIC = "patient-app.reports"


def _report(patient: uuid.UUID, *, bad_header_key: bool = False) -> tuple[RawRecord, uuid.UUID]:
    report = SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1)
    envelope = Envelope.wrap(report, patient_id=patient, producer="patient-app")
    headers = [(k.encode(), v.encode()) for k, v in envelope.headers().items()]
    if bad_header_key:
        headers.append((b"\xff\xfe", b"x"))
    return RawRecord(key=envelope.key, value=envelope.model_dump_json().encode(), headers=headers), report.report_id


async def _reported(stack: Stack, patient: uuid.UUID) -> bool:
    return bool(await events_for(stack.kafka.bootstrap, "safety.reports", patient, "SideEffectReported"))


async def test_a_header_key_that_is_not_text_costs_no_report_and_stalls_no_partition(services: Stack) -> None:
    bootstrap = services.kafka.bootstrap
    patients = [uuid.uuid4() for _ in range(8)]
    for i, patient in enumerate(patients[:6]):
        record, _ = _report(patient)
        await produce_raw(bootstrap, TOPIC, 1 + i % 2, [record])
    # The hostile record: a valid report whose only fault is a header key.
    hostile, _ = _report(patients[6], bad_header_key=True)
    await produce_raw(bootstrap, TOPIC, 0, [hostile])
    # Later traffic on the bad partition and on another one.
    later, _ = _report(patients[7])
    await produce_raw(bootstrap, TOPIC, 2, [later])
    after, _ = _report(patients[0])  # a second report of the first patient, behind the bad record
    await produce_raw(bootstrap, TOPIC, 0, [after])

    for patient in patients:
        await eventually(
            lambda p=patient: _reported(services, p), timeout=30, what=f"SideEffectReported for patient {patient}"
        )
    first_patient = await events_for(bootstrap, "safety.reports", patients[0], "SideEffectReported")
    assert len(first_patient) == 2
    await eventually(
        lambda: group_caught_up(bootstrap, "carecoord.safety", TOPIC),
        timeout=30,
        what="safety committed past every record",
    )

    # The operator's commands read the same topics without a traceback, and the stack is healthy again.
    env = environment(services)
    listed = await carecoord(env, "dlq", "list", "--service", "safety")
    assert listed.returncode == 0, listed.stderr
    assert "Traceback" not in listed.stdout + listed.stderr
    journey = await carecoord(env, "journey", str(patients[6]))
    assert journey.returncode == 0, journey.stderr
    assert "SideEffectReportSubmitted" in journey.stdout
