"""`carecoord seed-cohort`: a synthetic cohort for the outcome figures and plots of a local stack.

Outcomes need weeks of history (a baseline, a first dose, check-ins four weeks later), and no API takes
a dose given weeks ago: the services stamp their own clocks. So this registers each fictional patient
through intake and gives them a plan through dosing, as the apps would, and then writes what happened
*before* as the owners of those facts would have announced it, with past times: the intake baseline
(AssessmentScored on intake.screening), the first dosing session (AppointmentCompleted on
scheduling.appointments) and the mood check-ins (MoodCheckInRecorded on safety.reports). It is for a
stack on this machine only (it refuses a broker elsewhere): a real deployment's history is real.

The trajectories are drawn from a seeded generator (:func:`cohort`: pure, the same seed the same cohort),
not taken from any study: a share of patients improves, some a lot, some not at all, some never check in.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from carecoord_contracts import Envelope, Event
from carecoord_contracts.common import AppointmentType, Instrument
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.safety import MoodCheckInRecorded
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_contracts.topics import INTAKE_SCREENING, SAFETY_REPORTS, SCHEDULING_APPOINTMENTS

from .config import Target
from .demo import CLINICIAN, registration
from .errors import OperatorError
from .http import Services
from .kafka import Broker

# Indication -> (instrument, its maximum, diagnosis code).
INDICATIONS = {
    "depression": ("phq9", 27, "F33.1"),
    "anxiety": ("gad7", 21, "F41.1"),
    "ptsd": ("pcl5", 80, "F43.10"),
}
COURSE = {"starting_dose_mg": 100, "max_dose_mg": 300, "max_step_mg": 50, "planned_sessions": 6}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Member:
    indication: str
    baseline: int
    first_dose_days_ago: int
    check_ins: tuple[tuple[int, int], ...]  # (days after the first dose, total)

    @property
    def instrument(self) -> str:
        return INDICATIONS[self.indication][0]


def cohort(size: int, seed: int, *, weeks: int = 12) -> list[Member]:
    """``size`` fictional patients, first doses spread over the last ``weeks`` weeks, weekly check-ins
    up to today: each patient's improvement a draw (none, partial, large), a few never checking in."""
    rng = random.Random(seed)
    members = []
    for _ in range(size):
        indication = rng.choices(list(INDICATIONS), weights=(5, 3, 2))[0]
        _instrument, top, _code = INDICATIONS[indication]
        baseline = rng.randint(int(top * 0.5), int(top * 0.85))
        ago = rng.randint(7, weeks * 7)
        effect = rng.choices((0.1, 0.45, 0.75), weights=(3, 4, 3))[0]
        check_ins: list[tuple[int, int]] = []
        if rng.random() > 0.1:  # one in ten never checks in
            for day in range(7, ago + 1, 7):
                drop = effect * min(1.0, day / 28)
                total = round(baseline * (1 - drop) + rng.gauss(0, top * 0.05))
                check_ins.append((day, max(0, min(top, total))))
        members.append(Member(indication, baseline, ago, tuple(check_ins)))
    return members


def _local(target: Target) -> None:
    hosts = {h.rsplit(":", 1)[0].strip("[]") for h in target.kafka_bootstrap.split(",")}
    hosts |= {urlsplit(target.urls[s]).hostname or "" for s in ("intake", "dosing")}
    if not hosts <= LOOPBACK:
        raise OperatorError(
            "seed-cohort writes synthetic history and runs against a stack on this machine only "
            f"(the target names {', '.join(sorted(hosts - LOOPBACK))})"
        )


async def _publish(
    broker: Broker, topic: str, event: Event, patient_id: uuid.UUID, producer: str, at: datetime
) -> None:
    envelope = Envelope.wrap(event, patient_id=patient_id, producer=producer, occurred_at=at)
    await broker.publish(
        topic, envelope.model_dump_json().encode(), key=envelope.key, partition=None, headers=envelope.headers()
    )


async def _plan(http: Services, patient_id: str, member: Member, timeout: float = 30) -> str:
    """A plan, activated: dosing answers 403/404 until it has learnt the new patient's state."""
    body = {
        "patient_id": patient_id,
        "clinician_id": CLINICIAN,
        "indication": member.indication,
        "diagnosis_codes": [INDICATIONS[member.indication][2]],
        **COURSE,
    }
    deadline = time.monotonic() + timeout
    while True:
        answer = await http.raw("dosing", "POST", "/v1/plans", json=body)
        if answer.status_code == 201:
            break
        if answer.status_code not in (403, 404) or time.monotonic() > deadline:
            raise OperatorError(f"dosing: POST /v1/plans answered {answer.status_code}: {answer.text[:200]}")
        await asyncio.sleep(0.5)
    plan_id: str = answer.json()["plan_id"]
    await http.post("dosing", f"/v1/plans/{plan_id}/activate", {"clinician_id": CLINICIAN})
    return plan_id


async def seed(target: Target, members: list[Member], progress: Any = None) -> list[str]:
    """Register and enrol each member, then write their past; the patient ids, in order."""
    _local(target)
    now = datetime.now(UTC)
    ids = []
    async with Services(target) as http, Broker(target.kafka_bootstrap) as broker:
        for number, member in enumerate(members, 1):
            patient_id = (await http.post("intake", "/v1/patients", registration()))["patient_id"]
            plan_id = await _plan(http, patient_id, member)
            pid, dose = uuid.UUID(patient_id), now - timedelta(days=member.first_dose_days_ago)
            baseline = AssessmentScored(
                assessment_id=uuid.uuid4(),
                instrument=Instrument(member.instrument),
                total=member.baseline,
                severity_band="synthetic",
            )
            await _publish(broker, INTAKE_SCREENING.name, baseline, pid, "intake", dose - timedelta(days=5))
            session = AppointmentCompleted(
                appointment_id=uuid.uuid4(),
                appointment_type=AppointmentType.dosing_session,
                clinician_id=CLINICIAN,
                started_at=dose,
                ended_at=dose + timedelta(hours=2),
                plan_id=uuid.UUID(plan_id),
            )
            await _publish(broker, SCHEDULING_APPOINTMENTS.name, session, pid, "scheduling", dose + timedelta(hours=2))
            for day, total in member.check_ins:
                check_in = MoodCheckInRecorded(checkin_id=uuid.uuid4(), **{f"{member.instrument}_total": total})
                await _publish(broker, SAFETY_REPORTS.name, check_in, pid, "safety", dose + timedelta(days=day))
            ids.append(patient_id)
            if progress is not None:
                progress(number, len(members), patient_id)
    return ids
