"""SIGKILL at the worst moments; after a restart every effect happens exactly once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from carecoord_devstack.stack import ServiceProcess, Stack
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, group_caught_up

pytestmark = pytest.mark.e2e


async def _restart_armed(service: ServiceProcess, crash_at: str) -> None:
    service.stop()
    service.start(CARECOORD_CRASH_AT=crash_at)
    await asyncio.to_thread(service.wait_ready)


async def _wait_killed(service: ServiceProcess) -> None:
    assert service.proc is not None
    await eventually(lambda: service.proc.poll() is not None, what=f"{service.name} reaching its failure point")
    assert service.proc.returncode == -9, f"{service.name} should have died of SIGKILL, got {service.proc.returncode}"


async def _restart(service: ServiceProcess) -> None:
    service.start()
    await asyncio.to_thread(service.wait_ready)


async def _dosing_rows(stack: Stack, patient: uuid.UUID) -> tuple[str, int, int]:
    conn = await asyncpg.connect(stack.postgres.dsn("dosing"))
    try:
        status = await conn.fetchval("SELECT status FROM treatment_plans WHERE patient_id = $1", patient)
        pauses = await conn.fetchval(
            "SELECT count(*) FROM plan_transitions t JOIN treatment_plans p USING (plan_id) "
            "WHERE p.patient_id = $1 AND t.to_status = 'paused'",
            patient,
        )
        holds = await conn.fetchval("SELECT count(*) FROM treatment_holds WHERE patient_id = $1", patient)
    finally:
        await conn.close()
    return status, pauses, holds


async def _hold_for_dosing_armed_at(services: Stack, point: str) -> uuid.UUID:
    """A patient's severe report, with dosing armed to die at ``point`` on the hold; returns once it has."""
    dosing = services.services["dosing"]
    await _restart_armed(dosing, point)
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    assert (await journeys.report(services, patient, symptoms=["jaundice"], grade=2)).json()["hold_requested"]
    await _wait_killed(dosing)
    return patient


async def test_dosing_killed_after_consuming_the_hold_before_commit_pauses_exactly_once(services: Stack) -> None:
    dosing = services.services["dosing"]
    patient = await _hold_for_dosing_armed_at(services, "consumer.before_commit@TreatmentHoldRequested")
    # It died with the handler's work done but not committed: nothing of it stuck.
    assert await _dosing_rows(services, patient) == ("active", 0, 0)

    await _restart(dosing)
    await eventually(lambda: _status(services, patient, "paused"), what="plan paused after the restart")
    assert await _dosing_rows(services, patient) == ("paused", 1, 1)
    pauses = await events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanPaused")
    assert len(pauses) == 1, "one TreatmentPlanPaused event, however often the hold was delivered"


async def test_dosing_killed_after_its_commit_before_the_offset_commit_pauses_exactly_once(services: Stack) -> None:
    dosing = services.services["dosing"]
    patient = await _hold_for_dosing_armed_at(services, "consumer.after_commit_before_ack@TreatmentHoldRequested")
    # The pause committed; the offset did not: the hold is delivered again after the restart.
    assert await _dosing_rows(services, patient) == ("paused", 1, 1)

    await _restart(dosing)
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.dosing", "safety.holds"),
        what="dosing consumed the redelivered hold",
    )
    assert await _dosing_rows(services, patient) == ("paused", 1, 1)
    pauses = await events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanPaused")
    assert len(pauses) == 1, "the redelivery changed nothing"


async def test_safety_killed_between_publish_and_mark_sent_still_pauses_exactly_once(services: Stack) -> None:
    safety = services.services["safety"]
    await _restart_armed(safety, "relay.after_send_before_mark")
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)

    response = await journeys.report(services, patient, symptoms=["chest_pain"], grade=3)
    assert response.status_code == 201, "the report is committed before the relay runs"
    await _wait_killed(safety)
    await _restart(safety)  # the relay sends the unmarked rows again

    await eventually(lambda: _status(services, patient, "paused"), what="plan paused")
    holds = await eventually(
        lambda: _at_least(events_for(services.kafka.bootstrap, "safety.holds", patient, "TreatmentHoldRequested"), 2),
        what="the hold request published twice (at-least-once)",
    )
    assert len({h["event_id"] for h in holds}) == 1, "a re-send carries the same event id"
    await eventually(
        lambda: group_caught_up(services.kafka.bootstrap, "carecoord.dosing", "safety.holds"),
        what="dosing consumed the duplicate",
    )
    assert await _dosing_rows(services, patient) == ("paused", 1, 1)
    pauses = await events_for(services.kafka.bootstrap, "dosing.plans", patient, "TreatmentPlanPaused")
    assert len(pauses) == 1
    assert len(await journeys.reviews(services, patient)) == 1


async def _status(stack: Stack, patient: uuid.UUID, status: str) -> bool:
    return (await journeys.plan(stack, patient))["status"] == status


async def _at_least(found: object, n: int) -> list | None:
    items = await found  # type: ignore[misc]
    return items if len(items) >= n else None
