"""Zipkin, the trace dashboard of the local stack: one jar from Maven Central,
in-memory storage, UI and API on 127.0.0.1. The services send it their spans
(CARECOORD_ZIPKIN_ENDPOINT) so a report's whole journey opens as one trace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from .kafka import ensure_jars, java_binary
from .paths import ZIPKIN_LIB, ZIPKIN_POM
from .process import port_open, read_pid, spawn_daemon, stop_pid, wait_ready


@dataclass
class Zipkin:
    state_dir: Path
    port: int = 9411

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def spans_endpoint(self) -> str:
        return f"{self.url}/api/v2/spans"

    @property
    def _pid_file(self) -> Path:
        return self.state_dir / "zipkin" / "zipkin.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "zipkin" / "zipkin.log"

    def pid(self) -> int | None:
        return read_pid(self._pid_file, "zipkin-server")

    def start(self, timeout: float = 90.0) -> bool:
        if self.pid():
            return False
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is taken by another program: stop it or choose another Zipkin port")
        jar = next(ensure_jars(ZIPKIN_LIB, ZIPKIN_POM, what="Zipkin's jar").glob("zipkin-server-*-exec.jar"))
        proc = spawn_daemon(
            [
                java_binary(),
                "-Xmx512m",
                "-jar",
                str(jar),
                f"--armeria.ports[0].port={self.port}",
                "--armeria.ports[0].ip=127.0.0.1",
                "--armeria.ports[0].protocols=http",
            ],
            pid_file=self._pid_file,
            log_file=self.log_file,
        )

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_ready(
            proc,
            healthy,
            name="Zipkin",
            log_file=self.log_file,
            timeout=timeout,
            interval=0.5,
            what=f"Zipkin answering on {self.url}",
        )
        return True

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        stop_pid(pid, timeout=15)
        self._pid_file.unlink(missing_ok=True)
        return True
