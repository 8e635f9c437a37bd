"""A single-node Apache Kafka broker in KRaft mode, from Maven Central jars.

The jars are fetched once by Maven (`-C`: strict checksum verification) from
the pinned deploy/local/kafka/pom.xml into .local/kafka-lib; storage is
formatted once per state folder; the broker listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from .paths import KAFKA_LIB, KAFKA_LOG4J, KAFKA_POM
from .process import port_open, read_pid, stop_pid, tail, wait_until

MAIN_CLASS = "kafka.Kafka"


def ensure_jars(lib: Path = KAFKA_LIB, pom: Path = KAFKA_POM, what: str = "Kafka broker's jars") -> Path:
    """Fetch a pom's runtime jars unless this exact pom was fetched already."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = lib / ".pom-sha256"
    if marker.exists() and marker.read_text() == digest:
        return lib
    if shutil.which("mvn") is None:
        raise RuntimeError("Maven (mvn) is needed to fetch the local stack's jars: install it (apt-get install maven)")
    staging = lib.with_name(lib.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    # The same two lines as the Makefile's other set-up steps (tools/step): a first run takes minutes.
    label = f"{what} into {os.path.relpath(lib)} (mvn, from Maven Central)"
    print(f"setup: {label} ...", file=sys.stderr, flush=True)
    started = time.monotonic()
    result = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-C",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    took = time.monotonic() - started
    if result.returncode != 0:
        output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise RuntimeError(
            f"{output}\nsetup: {label}: FAILED after {took:.1f}s (mvn exit {result.returncode}). The lines above say why; "
            "fix that (a proxy? `mvn -v`?) and run the same command again."
        )
    print(f"setup: {label}: done in {took:.1f}s", file=sys.stderr, flush=True)
    (staging / ".pom-sha256").write_text(digest)
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    return lib


@dataclass
class Kafka:
    state_dir: Path
    port: int = 19092
    controller_port: int = 19093
    heap: str = "1g"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def _dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def log_file(self) -> Path:
        return self._dir / "broker.log"

    @property
    def _pid_file(self) -> Path:
        return self._dir / "broker.pid"

    def _properties(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                f"log.dirs={self._dir / 'data'}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                # Kafka 4's group coordinator waits 5 ms by default to batch its writes, so
                # every offset commit took ~7 ms here (bench arm A0c); consumers commit
                # once per batch, and a caught-up one per event, so latency matters more.
                "group.coordinator.append.linger.ms=0",
                # Lets tests use short consumer session timeouts so a killed
                # consumer's partitions move on in seconds.
                "group.min.session.timeout.ms=1000",
                # Topics come from the registry, never from a typo.
                "auto.create.topics.enable=false",
                "",
            ]
        )

    def pid(self) -> int | None:
        return read_pid(self._pid_file, MAIN_CLASS)

    def _java(self) -> str:
        return java_binary()

    def _classpath(self) -> str:
        return str(ensure_jars() / "*")

    def start(self, timeout: float = 90.0) -> bool:
        """Start the broker unless it runs; returns whether this call started it."""
        if self.pid():
            self.wait_answering(timeout)
            return False
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is taken by another program: stop it or choose another Kafka port")
        self._dir.mkdir(parents=True, exist_ok=True)
        config = self._dir / "server.properties"
        config.write_text(self._properties())
        java, classpath = self._java(), self._classpath()
        if not (self._dir / "data" / "meta.properties").exists():
            subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={_cluster_id()}",
                    "-c",
                    str(config),
                    "--ignore-formatted",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.heap}",
                    "-Xms256m",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                    f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                    "-cp",
                    classpath,
                    MAIN_CLASS,
                    str(config),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the shell that started it; stopped by pid
            )
        self._pid_file.write_text(str(proc.pid))
        try:
            self.wait_answering(timeout, process=proc)
        except Exception:
            stop_pid(proc.pid, timeout=5)
            raise
        return True

    def wait_answering(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        def ready() -> bool:
            if process is not None and process.poll() is not None:
                raise RuntimeError(
                    f"the Kafka broker exited with code {process.returncode}; last lines of {self.log_file}:\n"
                    + tail(self.log_file)
                )
            return port_open("127.0.0.1", self.port) and self.answers()

        wait_until(ready, timeout=timeout, interval=0.5, what=f"Kafka answering on {self.bootstrap}")

    def answers(self) -> bool:
        async def probe() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.describe_cluster()
                return True
            except Exception:
                return False
            finally:
                await admin.close()

        return asyncio.run(probe())

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout=30)
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker (fault tests): no controlled shutdown, no flush."""
        pid = self.pid()
        if pid:
            os.kill(pid, 9)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "stopped"
        return f"running (pid {pid}) on {self.bootstrap}" + ("" if self.answers() else ", not answering yet")


def java_binary() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java:
        raise RuntimeError(
            "Java 17+ is needed for the local stack: install it (apt-get install openjdk-17-jre-headless)"
        )
    return str(java)


def _cluster_id() -> str:
    # KRaft wants a base64 UUID (22 chars), as `kafka-storage random-uuid` prints.
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
