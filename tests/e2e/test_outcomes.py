"""Outcomes on the live stack: a small cohort driven through the events dosing learns from, the figures
read back from dosing's endpoints and checked against a computation in this test (not outcomes.py's).

The test plays intake (AssessmentScored), scheduling (AppointmentCompleted of a dosing session) and safety
(MoodCheckInRecorded) on their topics, with times in the past: no API takes a dose given weeks ago (the
services stamp their own clocks), and an envelope's ``occurred_at`` is its producer's clock. Plans go through
dosing's HTTP API. Figures across the program are compared as the change this cohort made, since other
tests on the same stack add patients too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from carecoord_cli.cohort import cohort
from carecoord_contracts import Envelope, Event
from carecoord_contracts.common import AppointmentType, Instrument
from carecoord_contracts.intake import AssessmentScored
from carecoord_contracts.safety import MoodCheckInRecorded
from carecoord_contracts.scheduling import AppointmentCompleted
from carecoord_devstack.stack import Stack
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.e2e.access_cases import Request
from tests.e2e.cli_io import carecoord, carecoord_json, environment
from tests.kafka_io import events_for, publish_envelope

pytestmark = pytest.mark.e2e

DOSING = "dosing"
NOW = datetime.now(UTC)
DOSE = NOW - timedelta(days=40)
# The definitions in force (outcomes-2026.12.0.toml), restated here so the test computes on its own.
REMISSION_BELOW = {"phq9": 5, "gad7": 5, "pcl5": 33}
RELIABLE_CHANGE = {"phq9": 5, "gad7": 4, "pcl5": 10}
WINDOW = (21, 35)


@dataclass(frozen=True)
class Member:
    indication: str
    instrument: str
    baseline: int
    check_ins: dict[int, int]  # day since the first dose -> total


COHORT = {
    "responder": Member("depression", "phq9", 20, {7: 14, 28: 8}),
    "remitter": Member("depression", "phq9", 20, {14: 9, 27: 3, 35: 2}),
    "non_responder": Member("depression", "phq9", 20, {28: 18}),
    "no_follow_up": Member("depression", "phq9", 20, {}),
    "anxious": Member("anxiety", "gad7", 15, {29: 11}),
}
COURSE = {"starting_dose_mg": 100, "max_dose_mg": 300, "max_step_mg": 50, "planned_sessions": 6}
CODES = {"depression": ["F33.1"], "anxiety": ["F41.1"]}


def expected(member: Member) -> dict[str, Any]:
    """Response and remission at the latest follow-up, improvement at the follow-up nearest day 28 in the window."""
    if not member.check_ins:
        return {"followed": False, "measured": False}
    latest = member.check_ins[max(member.check_ins)]
    in_window = {d: t for d, t in member.check_ins.items() if WINDOW[0] <= d <= WINDOW[1]}
    nearest = min(sorted(in_window, reverse=True), key=lambda d: abs(d - 28)) if in_window else None
    first_response = next((d for d in sorted(member.check_ins) if member.check_ins[d] * 2 <= member.baseline), None)
    return {
        "followed": True,
        "measured": nearest is not None,
        "improved": nearest is not None and member.baseline - in_window[nearest] >= RELIABLE_CHANGE[member.instrument],
        "response": latest * 2 <= member.baseline,
        "remission": latest < REMISSION_BELOW[member.instrument],
        "latest": latest,
        "days_to_response": first_response,
        "ever_remitted": any(t < REMISSION_BELOW[member.instrument] for t in member.check_ins.values()),
    }


async def publish(stack: Stack, topic: str, event: Event, patient_id: uuid.UUID, producer: str, at: datetime) -> None:
    envelope = Envelope.wrap(event, patient_id=patient_id, producer=producer, occurred_at=at)
    await publish_envelope(stack.kafka.bootstrap, topic, envelope)


async def enrol(stack: Stack, member: Member) -> uuid.UUID:
    patient_id = await ac.registered_patient(stack, "CO", DOSING)
    system = ac.service()
    plan = await ac.call(
        stack,
        DOSING,
        Request(
            "POST",
            "/v1/plans",
            {
                "patient_id": str(patient_id),
                "clinician_id": system.subject,
                "indication": member.indication,
                "diagnosis_codes": CODES[member.indication],
                **COURSE,
            },
        ),
        system,
    )
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["plan_id"]
    activated = await ac.call(
        stack, DOSING, Request("POST", f"/v1/plans/{plan_id}/activate", {"clinician_id": system.subject}), system
    )
    assert activated.status_code == 200, activated.text
    scored = AssessmentScored(
        assessment_id=uuid.uuid4(), instrument=Instrument(member.instrument), total=member.baseline, severity_band="x"
    )
    await publish(stack, "intake.screening", scored, patient_id, "intake", DOSE - timedelta(days=5))
    session = AppointmentCompleted(
        appointment_id=uuid.uuid4(),
        appointment_type=AppointmentType.dosing_session,
        clinician_id="dr-lee",
        started_at=DOSE,
        ended_at=DOSE + timedelta(hours=2),
        plan_id=plan_id,
    )
    await publish(stack, "scheduling.appointments", session, patient_id, "scheduling", DOSE + timedelta(hours=2))
    for day, total in member.check_ins.items():
        check_in = MoodCheckInRecorded(checkin_id=uuid.uuid4(), **{f"{member.instrument}_total": total})
        await publish(stack, "safety.reports", check_in, patient_id, "safety", DOSE + timedelta(days=day))
    return patient_id


async def program(stack: Stack) -> dict[str, Any]:
    response = await ac.call(stack, DOSING, Request("GET", "/v1/outcomes"), ac.service())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def counts(body: dict[str, Any]) -> dict[tuple[str, str | None], tuple[int, int]]:
    return {(f["figure"], f["indication"]): (f["numerator"], f["denominator"]) for f in body["figures"]}


async def test_a_cohorts_outcomes_match_an_independent_computation(services: Stack) -> None:
    before = await program(services)
    ids = {name: await enrol(services, member) for name, member in COHORT.items()}

    async def outcome_of(name: str) -> dict[str, Any] | None:
        response = await ac.call(services, DOSING, Request("GET", f"/v1/patients/{ids[name]}/outcomes"), ac.service())
        assert response.status_code == 200, response.text
        body = response.json()
        member = COHORT[name]
        mine = [i for i in body["instruments"] if i["instrument"] == member.instrument]
        arrived = mine and mine[0]["baseline"] is not None and body["first_dose_at"] is not None
        return mine[0] if arrived and len(mine[0]["follow_ups"]) == len(member.check_ins) else None

    for name, member in COHORT.items():
        got = await eventually(lambda name=name: outcome_of(name), what=f"dosing learnt {name}'s facts", timeout=30)
        want = expected(member)
        assert got["baseline"] == member.baseline
        if not want["followed"]:
            assert (got["latest"], got["response"], got["remission"]) == (None, None, None)
            continue
        assert got["latest"] == want["latest"]
        assert got["change_points"] == want["latest"] - member.baseline
        assert got["change_percent"] == round(100 * (want["latest"] - member.baseline) / member.baseline, 1)
        assert (got["response"], got["remission"]) == (want["response"], want["remission"]), name
        assert got["days_to_response"] == (None if want["days_to_response"] is None else want["days_to_response"] * 1.0)

    after = await program(services)
    delta = {
        k: (n - counts(before).get(k, (0, 0))[0], d - counts(before).get(k, (0, 0))[1])
        for k, (n, d) in counts(after).items()
    }
    dep = [expected(m) for m in COHORT.values() if m.indication == "depression"]
    followed = [e for e in dep if e["followed"]]
    measured = [e for e in dep if e["measured"]]
    assert delta[("improved_at_4_weeks", "depression")] == (sum(e["improved"] for e in measured), len(measured))
    assert delta[("improved_at_4_weeks_of_all_due", "depression")] == (sum(e["improved"] for e in measured), len(dep))
    assert delta[("response_rate", "depression")] == (sum(e["response"] for e in followed), len(followed))
    assert delta[("remission_rate", "depression")] == (sum(e["remission"] for e in followed), len(followed))
    assert delta[("improved_at_4_weeks", "anxiety")] == (1, 1)
    assert delta[("improved_at_4_weeks", None)] == (3, 4)
    cohort_before = {c["indication"]: c for c in before["cohorts"]}
    depression = next(c for c in after["cohorts"] if c["indication"] == "depression")
    assert depression["without_follow_up"] - cohort_before["depression"]["without_follow_up"] == 1
    assert after["definition_version"] == "2026.12.0" and after["definitions"]["instruments"]["pcl5"]["sources"]

    # Each milestone announced once, on dosing.outcomes, keyed by the patient (a later responding check-in
    # of the remitter announced nothing again).
    for name, member in COHORT.items():
        want = expected(member)
        responses = await events_for(services.kafka.bootstrap, "dosing.outcomes", ids[name], "TreatmentResponseReached")
        remissions = await events_for(services.kafka.bootstrap, "dosing.outcomes", ids[name], "RemissionReached")
        reached = want.get("days_to_response") is not None
        assert len(responses) == int(reached), (name, responses)
        assert len(remissions) == int(bool(want.get("ever_remitted"))), (name, remissions)
        if reached:
            payload = responses[0]["payload"]
            assert (payload["instrument"], payload["definition_version"]) == (member.instrument, "2026.12.0")
            assert round(payload["days_since_first_dose"]) == want["days_to_response"]


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_carecoord_outcomes_prints_the_figures_and_writes_the_plots(services: Stack, tmp_path: Path) -> None:
    env = environment(services)
    done = await carecoord(env, "outcomes", "--plots", str(tmp_path / "plots"))
    assert done.returncode == 0, done.stderr
    assert "improved_at_4_weeks" in done.stdout and "definitions" in done.stdout, done.stdout
    written = sorted((tmp_path / "plots").glob("*.png"))
    assert [p.name for p in written] == ["outcomes-rates-over-time.png", "outcomes-score-trajectories.png"]
    for png in written:
        assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 5000, png

    report = await carecoord_json(env, "outcomes")
    assert report["figures"] and {f["figure"] for f in report["figures"]} >= {"response_rate", "remission_rate"}
    assert report["definition_version"] == "2026.12.0"

    # A folder it cannot write: one clear line, no traceback, nothing half-written.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    refused = await carecoord(env, "outcomes", "--plots", str(blocked / "plots"))
    assert refused.returncode != 0
    assert "cannot write plots" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr


async def test_seed_cohort_gives_a_local_stack_weeks_of_history_for_the_figures(services: Stack) -> None:
    env = environment(services)
    seeded = await carecoord_json(env, "seed-cohort", "--patients", "6", "--seed", "3")
    members = cohort(6, 3)
    assert seeded["indications"] == [m.indication for m in members] and len(seeded["patients"]) == 6

    async def learnt(patient_id: str, member: Any) -> dict[str, Any] | None:
        response = await ac.call(services, DOSING, Request("GET", f"/v1/patients/{patient_id}/outcomes"), ac.service())
        assert response.status_code == 200, response.text
        mine = [i for i in response.json()["instruments"] if i["instrument"] == member.instrument]
        done = mine and mine[0]["baseline"] is not None and len(mine[0]["follow_ups"]) == len(member.check_ins)
        return mine[0] if done else None

    for patient_id, member in zip(seeded["patients"], members, strict=True):
        got = await eventually(lambda p=patient_id, m=member: learnt(p, m), what="dosing learnt the seeded history")
        assert got["baseline"] == member.baseline
        assert [f["total"] for f in got["follow_ups"]] == [total for _day, total in member.check_ins]
        assert got["first_dose_at"] is not None
        first_dose = datetime.fromisoformat(got["first_dose_at"])
        assert abs((NOW - first_dose).days - member.first_dose_days_ago) <= 1

    # Never against a broker elsewhere: synthetic history belongs on this machine only.
    remote = env | {"CARECOORD_KAFKA_BOOTSTRAP": "kafka.prod.example:9092"}
    refused = await carecoord(remote, "seed-cohort", "--patients", "1")
    assert refused.returncode != 0 and "this machine only" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
