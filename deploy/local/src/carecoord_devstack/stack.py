"""The whole local stack: Kafka, PostgreSQL, the registry's topics, the local mailbox and the services."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from carecoord_contracts.services import DEFAULT_HTTP_PORTS
from carecoord_contracts.topics import SERVICES
from carecoord_shared.messaging.topic_admin import ensure_topics

from .kafka import Kafka
from .mailbox import Mailbox
from .postgres import Postgres
from .process import tail, wait_until
from .zipkin import Zipkin


@dataclass
class ServiceProcess:
    """One service as its own OS process, with its log in a file."""

    name: str
    port: int
    env: dict[str, str]
    log_file: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"carecoord_{self.name}"],
                env={**os.environ, **self.env, **extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    # Generous: a service that exits fails at once (below), so the bound only meets one that is slow to come
    # up; on a 2-core machine under other load, importing and migrating one took over 60 s.
    def wait_ready(self, timeout: float = 180.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.proc.returncode}; last lines of {self.log_file}:\n"
                    + tail(self.log_file)
                )
            try:
                return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=timeout, interval=0.2, what=f"{self.name} ready on {self.url}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: what a crash looks like to everybody else."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Stack:
    state_dir: Path
    kafka_port: int = 19092
    controller_port: int = 19093
    pg_port: int = 15432
    # The local mailbox's SMTP port (engagement's mail and gateway SMS land in its Maildir).
    smtp_port: int = 1025
    http_ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_HTTP_PORTS))
    fast_unsafe_db: bool = False
    service_env: dict[str, str] = field(default_factory=dict)
    # The trace UI: `make run` has it; the test suite reads spans from files instead.
    with_zipkin: bool = False

    def __post_init__(self) -> None:
        self.kafka = Kafka(self.state_dir, port=self.kafka_port, controller_port=self.controller_port)
        self.postgres = Postgres(self.state_dir, port=self.pg_port, fast_unsafe=self.fast_unsafe_db)
        self.zipkin = Zipkin(self.state_dir)
        self.mailbox = Mailbox(self.state_dir, port=self.smtp_port)
        if self.with_zipkin:
            self.service_env.setdefault("CARECOORD_ZIPKIN_ENDPOINT", self.zipkin.spans_endpoint)
        self.services = {name: self._service(name) for name in SERVICES}

    def _service(self, name: str) -> ServiceProcess:
        env = {
            "CARECOORD_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "CARECOORD_DATABASE_URL": self.postgres.service_url(name),
            "CARECOORD_HTTP_PORT": str(self.http_ports[name]),
            "CARECOORD_LOG_FORMAT": "json",
            "CARECOORD_SMTP_HOST": self.mailbox.host,
            "CARECOORD_SMTP_PORT": str(self.mailbox.port),
            **self.service_env,
        }
        if name == "engagement":  # patients' contact details come from this stack's intake
            env.setdefault("CARECOORD_INTAKE_URL", f"http://127.0.0.1:{self.http_ports['intake']}")
        return ServiceProcess(name, self.http_ports[name], env, self.state_dir / "logs" / f"{name}.log")

    def up(self, log: Callable[[str], object] = print) -> dict[str, bool]:
        """Kafka, PostgreSQL, databases, topics and the mailbox; idempotent. Returns what this call started."""
        t0 = time.monotonic()
        started_pg = self.postgres.start()
        log(f"PostgreSQL  {self.postgres.status()}" + ("" if started_pg else " (already)"))
        self.postgres.ensure_service_databases(SERVICES)
        started_kafka = self.kafka.start()
        log(f"Kafka       {self.kafka.status()}" + ("" if started_kafka else " (already)"))
        for change in ensure_topics(self.kafka.bootstrap):
            log(f"  topic {change}")
        started_mailbox = self.mailbox.start()
        log(f"Mailbox     {self.mailbox.status()}" + ("" if started_mailbox else " (already)"))
        log(f"infrastructure ready in {time.monotonic() - t0:.1f}s")
        return {"postgres": started_pg, "kafka": started_kafka, "mailbox": started_mailbox}

    def start_services(self, names: tuple[str, ...] = SERVICES) -> None:
        for name in names:
            self.services[name].start()
        for name in names:
            self.services[name].wait_ready()

    def stop_services(self) -> None:
        for service in self.services.values():
            service.stop()

    def down(self) -> None:
        self.stop_services()
        self.zipkin.stop()
        self.mailbox.stop()
        self.kafka.stop()
        self.postgres.stop()
