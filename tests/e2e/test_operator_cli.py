"""The operator's `carecoord` command against the real stack: status, dead letters
(failed before a fix, processed on replay, not replayed twice by accident), a
patient's journey without PHI, and the guided demo."""

from __future__ import annotations

import re
import socket
import uuid
from typing import Any

import asyncpg
import pytest

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.e2e.cli_io import carecoord, carecoord_json, environment
from tests.e2e.intake_journeys import complete_intake, registration
from tests.kafka_io import group_caught_up

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(services: Stack) -> dict[str, str]:
    return environment(services)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


async def test_status_shows_every_service_ready_caught_up_with_its_dead_letters(env: dict[str, str]) -> None:
    report = await carecoord_json(env, "status")
    assert report["healthy"] and report["kafka_reachable"]
    by_service = {s["service"]: s for s in report["services"]}
    assert set(by_service) == set(SERVICES)
    for s in by_service.values():
        assert s["ready"] and s["checks"]["database"] == "ok" and s["checks"]["kafka"] == "ok"
        assert isinstance(s["checks"]["outbox"]["backlog"], int)
        assert s["consumer_group"] == f"carecoord.{s['service']}"
        assert isinstance(s["dead_letters"], int)
    assert "safety.holds[0]" in by_service["dosing"]["lag"], "lag is per topic partition the group consumes"
    assert by_service["billing"]["lag"] and "safety.holds[0]" not in by_service["billing"]["lag"]

    table = await carecoord(env, "status")
    assert table.returncode == 0, table.stderr
    assert all(service in table.stdout for service in SERVICES) and "healthy" in table.stdout


async def test_status_exits_non_zero_when_a_service_is_down(env: dict[str, str]) -> None:
    done = await carecoord(env, "--service-url", f"billing=http://127.0.0.1:{_closed_port()}", "status")
    assert done.returncode == 1
    assert "unreachable" in done.stdout and "unhealthy" in done.stdout
    assert (await carecoord(env, "status")).returncode == 0, "the option overrode the environment for this call only"


async def test_every_command_says_how_to_start_the_stack_when_nothing_runs() -> None:
    nowhere = {"CARECOORD_KAFKA_BOOTSTRAP": f"127.0.0.1:{_closed_port()}", "PATH": "/usr/bin:/bin"}
    nowhere.update({f"CARECOORD_{s.upper()}_URL": f"http://127.0.0.1:{_closed_port()}" for s in SERVICES})
    for args in (["status"], ["dlq", "list"], ["journey", str(uuid.uuid4())], ["demo"], ["outcomes"]):
        done = await carecoord(nowhere, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "make run" in done.stderr, args
        assert "Traceback" not in done.stderr + done.stdout, args


async def test_journey_lists_a_patients_events_in_order_with_codes_and_no_phi(
    services: Stack, env: dict[str, str]
) -> None:
    body = registration()
    patient = uuid.UUID(await complete_intake(services, body))
    await journeys.active_plan(services, patient)
    assert (await journeys.report(services, patient, symptoms=["chest_pain"], grade=3)).status_code == 201
    await eventually(lambda: _plan_status(services, patient, "paused"), what="plan paused")

    async def the_pause_is_on_the_topics() -> list[dict[str, Any]] | None:
        steps = await carecoord_json(env, "journey", str(patient))
        return steps if "TreatmentPlanPaused" in [s["event_type"] for s in steps] else None

    steps = await eventually(the_pause_is_on_the_topics, what="the pause on the topics")
    types = [s["event_type"] for s in steps]
    for earlier, later in [
        ("PatientRegistered", "EligibilityDetermined"),
        ("TreatmentPlanCreated", "TreatmentPlanActivated"),
        ("SideEffectReported", "TreatmentPlanPaused"),
        ("TreatmentHoldRequested", "TreatmentPlanPaused"),
    ]:
        assert types.index(earlier) < types.index(later), types
    assert [s["occurred_at"] for s in steps] == sorted(s["occurred_at"] for s in steps)
    producers = {s["event_type"]: s["producer"] for s in steps}
    assert producers["PatientRegistered"] == "intake" and producers["TreatmentPlanPaused"] == "dosing"
    assert producers["ClinicianReviewOpened"] == "safety"
    reported = next(s for s in steps if s["event_type"] == "SideEffectReported")
    assert reported["coded"]["grade"] == 3 and reported["coded"]["symptoms"] == ["chest_pain"]
    for s in steps:
        assert s["trace_id"] is None or re.fullmatch(r"[0-9a-f]{32}", s["trace_id"])

    table = await carecoord(env, "journey", str(patient))
    assert table.returncode == 0, table.stderr
    assert "TreatmentPlanPaused" in table.stdout
    for phi in (
        body["first_name"],
        body["last_name"],
        body["email"],
        body["date_of_birth"],
        body["address"]["line1"],
        "XQZ-99817",
    ):
        assert phi not in table.stdout + str(steps), phi


async def test_a_dead_letter_fails_before_the_fix_is_replayed_after_it_and_not_twice_by_accident(
    services: Stack, env: dict[str, str]
) -> None:
    """The fault: a constraint (as a faulty migration would leave) makes dosing's
    database refuse this patient's hold, so the TreatmentHoldRequested that safety
    publishes is dead-lettered with handler_error and the plan stays active. The
    fix drops the constraint; the replay then opens the hold and pauses the plan."""
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    dosing_db = await asyncpg.connect(services.postgres.dsn("dosing"))
    constraint = f"fault_{patient.hex[:12]}"
    try:
        await dosing_db.execute(
            f"ALTER TABLE treatment_holds ADD CONSTRAINT {constraint} CHECK (patient_id <> '{patient}') NOT VALID"
        )
        assert (await journeys.report(services, patient, symptoms=["chest_pain"], grade=3)).status_code == 201
        letter = await eventually(lambda: _letter_for(env, patient), what="the hold request dead-lettered")
    finally:
        await dosing_db.execute(f"ALTER TABLE treatment_holds DROP CONSTRAINT IF EXISTS {constraint}")
        await dosing_db.close()
    assert letter["reason"] == "handler_error" and letter["event_type"] == "TreatmentHoldRequested"
    assert letter["original"].startswith("safety.holds/") and letter["replays"] == []
    assert (await journeys.plan(services, patient))["status"] == "active", "the hold was not applied"

    shown = await carecoord_json(env, "dlq", "show", "dosing", str(letter["offset"]))
    # The patient's later events wait behind it (parked) until the replay below releases them.
    assert shown["detail"] == {"error": "IntegrityError", "parked": True} and shown["original_key"] == str(patient)
    nothing_chosen = await carecoord(env, "dlq", "replay", "dosing")
    assert nothing_chosen.returncode == 1 and "--offset" in nothing_chosen.stderr

    table = await carecoord(env, "dlq", "list")
    assert table.returncode == 0 and "handler_error" in table.stdout and "TreatmentHoldRequested" in table.stdout
    print(table.stdout)

    replayed = await carecoord(env, "dlq", "replay", "dosing", "--offset", str(letter["offset"]))
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed" in replayed.stdout
    paused = await eventually(lambda: _plan_status(services, patient, "paused"), what="the replayed hold applied")
    assert len(paused["open_hold_ids"]) == 1

    listed = await _letter_for(env, patient)
    assert listed is not None and len(listed["replays"]) == 1
    assert listed["replays"][0]["to"].startswith("safety.holds/")

    again = await carecoord(env, "dlq", "replay", "dosing", "--offset", str(letter["offset"]))
    assert again.returncode == 0 and "skipped" in again.stdout and "already replayed" in again.stdout
    assert len((await _letter_for(env, patient))["replays"]) == 1, "nothing was published"

    forced = await carecoord(env, "dlq", "replay", "dosing", "--offset", str(letter["offset"]), "--force")
    assert forced.returncode == 0 and "replayed" in forced.stdout
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.dosing", "safety.holds"), what="dosing read it"
    )
    after = await journeys.plan(services, patient)
    assert after["transitions"] == paused["transitions"] and after["open_hold_ids"] == paused["open_hold_ids"]
    letters = [
        le
        for le in await carecoord_json(env, "dlq", "list", "--service", "dosing")
        if le["event_id"] == letter["event_id"]
    ]
    assert len(letters) == 1, "the forced repeat was dropped by dosing's inbox, not dead-lettered"


async def test_demo_drives_a_whole_journey_and_shows_what_each_service_did(
    services: Stack, env: dict[str, str]
) -> None:
    try:
        done = await carecoord(env, "demo", timeout=240)
        print(done.stdout)  # shown when the test fails: which step stopped
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Demo complete" in done.stdout
        patient = uuid.UUID(re.search(r"Demo complete: patient ([0-9a-f-]{36})", done.stdout).group(1))  # type: ignore[union-attr]
        for said in ("What each service did", "TreatmentPlanPaused", "TreatmentPlanResumed", "ClinicianReviewResolved"):
            assert said in done.stdout, said
        assert (await journeys.plan(services, patient))["status"] == "active"
        assert [r["status"] for r in await journeys.reviews(services, patient)] == ["resolved"]
        kinds = {
            (a["appointment_type"], a["status"])
            for a in await journeys.appointments(services, patient, include_all=True)
        }
        assert {
            ("initial_evaluation", "booked"),
            ("dosing_session", "cancelled"),
            ("dosing_session", "booked"),
        } <= kinds
        assert {"ClinicianReviewOpened", "TreatmentPlanPaused", "TreatmentPlanResumed"} <= set(
            await journeys.received(services, "billing", patient)
        )
    finally:
        await _retire_demo_clinicians(services)


async def _retire_demo_clinicians(stack: Stack) -> None:
    """The demo's clinicians are licensed everywhere at any hour; other tests choose their own."""
    async with api_client(timeout=10) as http:
        for clinician_id in ("demo-psychiatrist", "demo-therapist"):
            url = journeys.url(stack, "scheduling", f"/v1/clinicians/{clinician_id}")
            found = await http.get(url)
            if found.status_code == 200:
                body = found.json()
                keep = {k: body[k] for k in ("role", "time_zone", "licensed_states", "weekly_availability")}
                assert (await http.put(url, json={**keep, "active": False})).status_code == 200


async def _plan_status(stack: Stack, patient: uuid.UUID, status: str) -> dict[str, Any] | None:
    plan = await journeys.plan(stack, patient)
    return plan if plan["status"] == status else None


async def _letter_for(env: dict[str, str], patient: uuid.UUID) -> dict[str, Any] | None:
    letters = await carecoord_json(env, "dlq", "list", "--service", "dosing")
    return next(
        (le for le in letters if le["original_key"] == str(patient) and le["event_type"] == "TreatmentHoldRequested"),
        None,
    )
