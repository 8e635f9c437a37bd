"""The nemesis: kills and restarts services, the broker and the database while the load runs.

Every service starts armed with CARECOORD_CRASH_AT, so it SIGKILLs itself at a
named failure point when the load takes it there (between the database commit
and the offset commit, between the relay's send and mark-sent, ...); a
supervisor restarts whatever died (armed with the next point, if the soak
queued more, else plain) and tells a death it did not expect from one it did.
Meanwhile the faults run one after another:
- ``("kill", service)``: SIGKILL at a random moment;
- ``("broker", "clean" | "kill")``, ``("database", "clean" | "kill")``;
- ``("rebalance", service)``: a second instance joins the consumer group under
  load, then leaves;
- ``("stall", "network")``: the TCP proxy between every service and the broker
  (tests/tcp_proxy.py) holds all bytes past the relay's producer timeout, so
  batches in flight fail for good (the relay sends their rows again), then
  lets them go; consumers miss heartbeats meanwhile and rejoin their groups.
  The load's journeys soon all wait on events that cannot arrive then, so the
  nemesis registers a patient at intake each second of the stall (a write
  that needs no event): intake's relay has a batch to send into it.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field

import httpx

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.process import pid_alive
from carecoord_devstack.scratch import free_ports
from carecoord_devstack.stack import ServiceProcess, Stack
from tests.auth import SERVICE_TOKEN, bearer
from tests.e2e.intake_journeys import registration
from tests.tcp_proxy import ProxyThread

from .service_logs import RelayFailures

FAILURE_POINTS: dict[str, tuple[str, ...]] = {
    "intake": ("uow.before_commit", "relay.after_send_before_mark"),
    "safety": (
        "consumer.after_commit_before_ack@SideEffectReportSubmitted",
        "relay.after_send_before_mark",
        "consumer.before_commit@SideEffectReportSubmitted",
    ),
    "dosing": (
        "consumer.after_commit_before_ack@TreatmentHoldRequested",
        "relay.after_send_before_mark",
        "consumer.before_commit@SideEffectReported",
    ),
    "scheduling": (
        "consumer.after_commit_before_ack@TreatmentPlanActivated",
        "relay.after_send_before_mark",
        "consumer.before_commit@TreatmentPlanPaused",
    ),
    "billing": (
        "consumer.after_commit_before_ack@AppointmentCompleted",
        "relay.after_send_before_mark",
        "uow.before_commit@AppointmentCompleted",
    ),
    # Engagement only consumes here (the load opens no task by HTTP): the patient, their care team, a review's assignee.
    "engagement": (
        "consumer.after_commit_before_ack@PatientRegistered",
        "consumer.before_commit@CareTeamChanged",
        "consumer.after_commit_before_ack@ClinicianReviewAssigned",
    ),
}
# An armed point the load has not reached by then is disarmed (a plain restart).
ARMED_WITHIN_S = 90.0
# A stall lasts past the producer timeout by this much at least, and until some relay batch
# failed for good (seen in the logs), at the most STALL_MAX_S.
STALL_PAST_TIMEOUT_S = 1.5
STALL_MAX_S = 30.0
STALL_ATTEMPTS = 2
Fault = tuple[str, ...]


@dataclass(frozen=True)
class Stall:
    seconds: float  # how long the network was held
    relay_failures: Counter[str]  # what the relays logged meanwhile (service_logs.RelayFailures)
    keys_timed_out: int  # keys whose batch failed for good on the producer's timeout meanwhile


@dataclass
class Figures:
    kills: Counter[str] = field(default_factory=Counter)  # SIGKILLs per service, all kinds
    at_failure_points: Counter[str] = field(default_factory=Counter)  # of which at a named point
    broker_restarts: Counter[str] = field(default_factory=Counter)  # clean / kill
    database_restarts: Counter[str] = field(default_factory=Counter)
    rebalances: int = 0
    stalls: list[Stall] = field(default_factory=list)
    unexpected_exits: Counter[str] = field(default_factory=Counter)  # deaths nobody caused
    log: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.log.append(line)
        print(f"[nemesis] {line}", flush=True)  # seen with -s


def armed_points(rng: random.Random, rounds: int) -> dict[str, deque[str]]:
    """Per round, each service killed once at one of its failure points."""
    return {s: deque(rng.choice(FAILURE_POINTS[s]) for _ in range(rounds)) for s in SERVICES}


def schedule(rng: random.Random, rounds: int, random_kills: int) -> list[Fault]:
    """Per round: ``random_kills`` services killed at random moments, the broker and the
    database each restarted cleanly and killed, one rebalance, one network stall; shuffled."""
    faults: list[Fault] = []
    for _ in range(rounds):
        faults += [("kill", s) for s in rng.sample(SERVICES, random_kills)]
        faults += [("broker", "clean"), ("broker", "kill"), ("database", "clean"), ("database", "kill")]
        faults.append(("rebalance", rng.choice(("safety", "dosing", "scheduling", "billing"))))
        faults.append(("stall", "network"))
    rng.shuffle(faults)
    return faults


class Nemesis:
    """``proxy``: what every service reaches the broker through; ``producer_timeout_s``: the
    relays' producer request timeout (CARECOORD_OUTBOX_REQUEST_TIMEOUT_MS)."""

    def __init__(
        self,
        stack: Stack,
        rng: random.Random,
        figures: Figures,
        armed: dict[str, deque[str]],
        proxy: ProxyThread,
        producer_timeout_s: float,
    ) -> None:
        self.stack = stack
        self.proxy = proxy
        self.producer_timeout_s = producer_timeout_s
        self.rng = rng
        self.figures = figures
        self._queued = armed
        self._armed: dict[str, tuple[str, float] | None] = dict.fromkeys(SERVICES)
        self._killing: set[str] = set()
        # Held while the broker or the database is down: the supervisor restarts nothing meanwhile.
        self._infrastructure = threading.Lock()
        self._stopping = threading.Event()

    # -- the supervisor -------------------------------------------------------------------------

    def start_services(self) -> None:
        for service in self.stack.services.values():
            self._start(service)
        for service in self.stack.services.values():
            self._wait_ready(service)

    def supervise(self) -> None:
        """Until stopped: restart what died, counting each death by its cause; disarm stale points.

        Runs while the load does: an armed point's time starts with it."""
        self._armed = {name: armed and (armed[0], time.monotonic()) for name, armed in self._armed.items()}
        while not self._stopping.is_set():
            for service in self.stack.services.values():
                with self._infrastructure:
                    if not service.running():
                        self._died(service)
                        self._start(service)
                        self._wait_ready(service)
                    elif (armed := self._armed[service.name]) and time.monotonic() - armed[1] > ARMED_WITHIN_S:
                        self.figures.note(f"{service.name}: {armed[0]} not reached, disarmed")
                        self._queued[service.name].clear()
                        self._armed[service.name] = None
                        self._kill(service)
            time.sleep(0.1)

    def _died(self, service: ServiceProcess) -> None:
        assert service.proc is not None
        code, armed = service.proc.returncode, self._armed[service.name]
        if service.name in self._killing:
            self._killing.discard(service.name)
            if armed:  # killed before its point: armed again with it
                self._queued[service.name].appendleft(armed[0])
        elif code == -9 and armed:
            self.figures.kills[service.name] += 1
            self.figures.at_failure_points[service.name] += 1
            self.figures.note(f"{service.name} killed itself at {armed[0]}")
        else:
            self.figures.unexpected_exits[service.name] += 1
            self.figures.note(f"{service.name} exited with {code}, not killed")

    def _start(self, service: ServiceProcess) -> None:
        queued = self._queued[service.name]
        if queued:
            point = queued.popleft()
            self._armed[service.name] = (point, time.monotonic())
            service.start(CARECOORD_CRASH_AT=point)
        else:
            self._armed[service.name] = None
            service.start()

    def _wait_ready(self, service: ServiceProcess) -> None:
        try:
            service.wait_ready(timeout=120)
        except RuntimeError:
            pass  # died starting up (at its point, with a backlog to relay): the next pass sees it

    def _kill(self, service: ServiceProcess) -> None:
        if service.running():
            self._killing.add(service.name)
            service.kill()
            self.figures.kills[service.name] += 1

    def armed_left(self) -> int:
        return sum(len(q) for q in self._queued.values()) + sum(a is not None for a in self._armed.values())

    def all_ready(self) -> bool:
        return all(s.running() for s in self.stack.services.values()) and self.armed_left() == 0

    def stop(self) -> None:
        self._stopping.set()

    # -- the faults -----------------------------------------------------------------------------

    async def run(self, faults: list[Fault], gap_s: tuple[float, float], done: asyncio.Event) -> None:
        try:
            for fault in faults:
                await asyncio.sleep(self.rng.uniform(*gap_s))
                t0 = time.monotonic()
                await asyncio.to_thread(self._apply, fault)
                self.figures.note(f"{'/'.join(fault)} ({time.monotonic() - t0:.1f}s)")
        finally:
            done.set()

    def _apply(self, fault: Fault) -> None:
        kind, target = fault
        if kind == "kill":
            time.sleep(self.rng.uniform(0, 1.5))
            with self._infrastructure:
                self._kill(self.stack.services[target])
        elif kind == "broker":
            with self._infrastructure:
                self._broker(target)
        elif kind == "database":
            with self._infrastructure:
                self._database(target)
        elif kind == "rebalance":
            self._rebalance(self.stack.services[target])
        elif kind == "stall":
            with self._infrastructure:  # as with the broker away: nothing restarted meanwhile
                self._stall()
        else:
            raise ValueError(fault)

    def _broker(self, how: str) -> None:
        kafka = self.stack.kafka
        if how == "clean":
            kafka.stop()
        else:
            pid = kafka.pid()
            kafka.kill()
            while pid and pid_alive(pid):
                time.sleep(0.05)
        time.sleep(self.rng.uniform(0.5, 2.0))
        kafka.start(timeout=120)
        self.figures.broker_restarts[how] += 1

    def _database(self, how: str) -> None:
        postgres = self.stack.postgres
        if how == "clean":
            postgres.stop()
        else:
            postgres.kill()
        time.sleep(self.rng.uniform(0.5, 2.0))
        postgres.start()
        self.figures.database_restarts[how] += 1

    def _rebalance(self, service: ServiceProcess) -> None:
        [port] = free_ports(1)
        second = ServiceProcess(
            service.name,
            port,
            {**service.env, "CARECOORD_HTTP_PORT": str(port)},
            service.log_file.with_name(f"{service.name}-2.log"),
        )
        second.start()
        try:
            second.wait_ready(timeout=120)
            time.sleep(self.rng.uniform(4.0, 8.0))  # both instances share the partitions under load
        finally:
            second.stop()
        self.figures.rebalances += 1

    def _stall(self) -> None:
        """One stall; held again (once) if no relay had a batch in flight to fail: a producer just
        restarted by an earlier fault may not be connected yet, and then it fails to connect
        rather than failing a batch (seen once in 15 runs), which proves nothing about batches."""
        for attempt in range(STALL_ATTEMPTS):
            self._relay_connected()
            stall = self._stall_once()
            if stall.keys_timed_out or attempt == STALL_ATTEMPTS - 1:
                self.figures.stalls.append(stall)
                return

    def _relay_connected(self, timeout: float = 20.0) -> None:
        """Until intake's relay has published something new: its producer is connected."""
        log = self.stack.services["intake"].log_file
        start = log.stat().st_size if log.exists() else 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._register_probe_patient()
            time.sleep(0.5)
            with open(log, "rb") as f:
                f.seek(start)
                if b'"outbox.published"' in f.read():
                    return

    def _stall_once(self) -> Stall:
        failures = RelayFailures(self.stack.state_dir / "logs")
        t0 = probed = time.monotonic()
        self.proxy.stall()
        try:
            while (held := time.monotonic() - t0) < STALL_MAX_S:
                if time.monotonic() - probed >= 1.0:
                    self._register_probe_patient()
                    probed = time.monotonic()
                if held > self.producer_timeout_s + STALL_PAST_TIMEOUT_S:
                    failures.poll()
                    if failures.keys_timed_out:
                        break
                time.sleep(0.2)
        finally:
            self.proxy.resume()
        held = time.monotonic() - t0
        failures.poll()
        return Stall(held, Counter(failures.seen), failures.keys_timed_out)

    def _register_probe_patient(self) -> None:
        """A patient outside the load's history (no intake steps: nothing is booked or billed)."""
        body = registration(external_id=f"fault-probe-{uuid.uuid4()}")
        try:
            httpx.post(
                f"{self.stack.services['intake'].url}/v1/patients", json=body, headers=bearer(SERVICE_TOKEN), timeout=5
            )
        except httpx.HTTPError:
            pass  # intake restarting: the next second tries again
