"""Fault injection: the domain invariants hold while services, the broker and the
database are killed and restarted, and the network to the broker stalls, under
load (issues 10 and 19).

A history of what was sent is recorded while the nemesis kills each service at
named failure points and at random moments, restarts the broker and the
database (cleanly and with SIGKILL), rebalances a consumer group and stalls the
TCP proxy every service reaches the broker through past the relays' producer
timeout (batches in flight fail for good and are sent again), and a
hostile producer writes protocol-level garbage onto every consumed topic and
partition (tests/faults/hostile.py); once the
system has quiesced, the checker compares the history with every service's
database. The figures are printed in the terminal summary ("faults").

Bounded here; CARECOORD_SOAK=1 (make soak) scales patients and fault rounds up.
CARECOORD_FAULT_SEED=<n> replays one run's choices.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from carecoord_devstack.paths import LOCAL
from carecoord_devstack.stack import Stack
from tests.auth import service_client
from tests.conftest import eventually, fresh_stack
from tests.e2e.journeys import ALL_WEEK
from tests.faults.checker import CATEGORIES, check, dead_letter_reasons, quiesce, unclaimed
from tests.faults.history import History
from tests.faults.hostile import HostileProducer
from tests.faults.load import Load
from tests.faults.nemesis import Figures, Nemesis, armed_points, schedule
from tests.figures import section
from tests.proxied_kafka import ProxiedKafka
from tests.tcp_proxy import ProxyThread

pytestmark = pytest.mark.e2e

SOAK = os.environ.get("CARECOORD_SOAK") == "1"


@dataclass(frozen=True)
class Scale:
    patients: int  # at least; on while faults remain
    most: int
    concurrency: int
    start_gap_s: float
    rounds: int
    random_kills: int  # per round
    fault_gap_s: tuple[float, float]


# Per service process (a kill resets it): more than one event's whole retry budget.
TRANSIENT_FAILURES = 7

# The relays' producer timeout here (CARECOORD_OUTBOX_REQUEST_TIMEOUT_MS): a stall past it
# costs seconds, not aiokafka's default 40.
PRODUCER_TIMEOUT_MS = 3000

SCALE = Scale(200, 800, 8, 1.0, 4, 3, (2.0, 6.0)) if SOAK else Scale(20, 60, 6, 1.0, 1, 1, (0.5, 1.5))


@pytest.fixture(scope="module")
def fault_stack() -> Iterator[tuple[Stack, ProxyThread]]:
    """Its own stack: restarting the broker and the database must not disturb the session's.

    Its services reach the broker only through a TCP proxy the nemesis stalls (the
    broker advertises the proxy on a listener of its own, tests/proxied_kafka.py);
    the test's own clients (the load, the checker) go straight to it.

    Durable commits (not the session stack's fast_unsafe_db): with asynchronous
    commit, a killed PostgreSQL may lose commits it already acknowledged, which
    would be the test's own doing rather than the system's."""
    state_dir = LOCAL / "fault-stack"
    stack = fresh_stack(
        state_dir,
        fast_unsafe_db=False,
        CARECOORD_CLEARINGHOUSE_DIR=str(state_dir / "clearinghouse"),
        CARECOORD_EXCHANGE_INTERVAL_S="0.5",
        # Transient failures past the retry budget (5 attempts): the patient is parked, later
        # events wait behind, and the service releases it itself.
        CARECOORD_TRANSIENT_AT=f"consumer.before_commit@TreatmentHoldRequested*{TRANSIENT_FAILURES}",
        CARECOORD_PARKED_RETRY_S="2",
        CARECOORD_OUTBOX_REQUEST_TIMEOUT_MS=str(PRODUCER_TIMEOUT_MS),
    )
    stack.services["billing"].env["CARECOORD_INTAKE_URL"] = stack.services["intake"].url
    stack.kafka.heap = "512m"
    kafka = stack.kafka = ProxiedKafka.instead_of(stack.kafka)
    for service in stack.services.values():
        service.env["CARECOORD_KAFKA_BOOTSTRAP"] = kafka.proxy_bootstrap
    proxy = ProxyThread(kafka.proxied_port, port=kafka.proxy_port)
    try:
        stack.up(lambda msg: print(f"[fault-stack] {msg}"))
        try:
            yield stack, proxy  # the nemesis starts the services, armed
        finally:
            stack.down()
    finally:
        proxy.close()


async def _clinicians(stack: Stack) -> None:
    """Enough clinicians licensed in Colorado (the load's state) for every booking."""
    async with service_client(stack, "scheduling") as http:
        for n in range(3):
            for role in ("psychiatric_clinician", "therapist"):
                body = {
                    "role": role,
                    "time_zone": "America/Denver",
                    "licensed_states": ["CO"],
                    "weekly_availability": ALL_WEEK,
                }
                response = await http.put(f"/v1/clinicians/fault-{role[:5]}-{n}", json=body)
                assert response.status_code == 200, response.text


# ~4 min on a quiet 2-core machine; the margin is for a busy one.
@pytest.mark.timeout(3600 if SOAK else 600)
async def test_no_lost_missed_duplicated_or_reordered_effect_under_faults(
    fault_stack: tuple[Stack, ProxyThread],
) -> None:
    stack, proxy = fault_stack
    seed = int(os.environ.get("CARECOORD_FAULT_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    figures, history = Figures(), History()
    nemesis = Nemesis(stack, rng, figures, armed_points(rng, SCALE.rounds), proxy, PRODUCER_TIMEOUT_MS / 1000)
    hostile = HostileProducer(stack, random.Random(rng.random()))
    await asyncio.to_thread(nemesis.start_services)
    await _clinicians(stack)

    t0 = time.monotonic()
    supervisor = asyncio.create_task(asyncio.to_thread(nemesis.supervise))
    try:
        faults_done = asyncio.Event()
        async with Load(stack, history, rng) as load:
            await asyncio.gather(
                load.run(
                    SCALE.patients,
                    SCALE.most,
                    SCALE.concurrency,
                    SCALE.start_gap_s,
                    more=lambda: not faults_done.is_set() or nemesis.armed_left() > 0,
                ),
                nemesis.run(schedule(rng, SCALE.rounds, SCALE.random_kills), SCALE.fault_gap_s, faults_done),
                hostile.run(faults_done),
            )
        await eventually(nemesis.all_ready, timeout=120, what="every service up again, disarmed")
    finally:
        nemesis.stop()
        await supervisor
    loaded = time.monotonic() - t0
    await quiesce(stack, timeout=180)
    await eventually(lambda: _all_claimed(stack), timeout=60, what="every insured charge claimed")
    findings = await check(stack, history)
    letters = await dead_letter_reasons(stack)
    if any(findings.counts[c] for c in CATEGORIES):
        _keep_evidence(stack, seed, findings.details)

    report = section("faults" + (" (soak)" if SOAK else ""))
    report.update(
        {
            "seed": seed,
            "journeys (completed / started)": f"{sum(j.done for j in history.journeys)} / {len(history.journeys)}",
            "side-effect reports (http / kafka; resubmitted)": (
                f"{sum(r.channel == 'http' for _, r in history.reports())} / "
                f"{sum(r.channel == 'kafka' for _, r in history.reports())}; {history.resubmissions}"
            ),
            "kills per service (at a failure point)": ", ".join(
                f"{s} {figures.kills[s]} ({figures.at_failure_points[s]})" for s in sorted(figures.kills)
            ),
            "broker restarts (clean / SIGKILL)": f"{figures.broker_restarts['clean']} / {figures.broker_restarts['kill']}",
            "database restarts (clean / SIGKILL)": f"{figures.database_restarts['clean']} / {figures.database_restarts['kill']}",
            "consumer-group rebalances": figures.rebalances,
            f"producer stalls past the {PRODUCER_TIMEOUT_MS / 1000:g} s timeout (held; relay failures meanwhile)": "; ".join(
                f"{stall.seconds:.1f}s ({', '.join(f'{what} {n}' for what, n in sorted(stall.relay_failures.items())) or 'none'})"
                for stall in figures.stalls
            )
            or "none",
            "unexpected service exits": sum(figures.unexpected_exits.values()),
            "hostile records (protocol level, every consumed topic and partition)": hostile.figures(),
            "dead letters by reason": ", ".join(f"{r} {n}" for r, n in sorted(letters.items())) or "none",
            "patients parked past the retry budget, then released by the service": letters["retries_exhausted"],
            "client retries (http / kafka)": f"{history.http_retries} / {history.kafka_retries}",
            "checked": ", ".join(f"{k} {v}" for k, v in findings.checked.items()),
            **{category: findings.counts[category] for category in CATEGORIES},
            "load under faults": f"{loaded:.0f}s",
        }
    )
    unfinished = [f"journey {j.index}: {j.error}" for j in history.journeys if not j.done]
    assert not unfinished, unfinished
    assert not history.resubmissions_not_already, "a resubmitted report id must answer 200 (already recorded)"
    assert not figures.unexpected_exits, f"services died of faults they were not given: {figures.unexpected_exits}"
    assert all(findings.counts[c] == 0 for c in CATEGORIES), "\n".join(findings.details)
    assert sum(figures.at_failure_points.values()) >= 1, figures.log
    assert letters["retries_exhausted"] >= 1, "no event ran out of its retry budget: the parking was not exercised"
    assert len(figures.stalls) == SCALE.rounds, figures.log
    # A stall may find no batch in flight (make soak saw one of four, held twice): the run as a
    # whole must have failed some batch for good, or the producer fault proved nothing.
    assert any(stall.keys_timed_out >= 1 for stall in figures.stalls), (
        f"network stalls during which no relay batch timed out prove nothing: {figures.stalls}"
    )


async def _all_claimed(stack: Stack) -> bool:
    return await unclaimed(stack) == 0


def _keep_evidence(stack: Stack, seed: int, details: list[str]) -> None:
    """The services' logs and the findings of a failed run, kept past the next run's fresh stack."""
    kept = LOCAL / "fault-failures" / f"seed-{seed}-{int(time.time())}"
    shutil.copytree(stack.state_dir / "logs", kept / "logs", dirs_exist_ok=True)
    (kept / "findings.txt").write_text("\n".join(details) + "\n")
    print(f"[faults] evidence kept in {kept}")
