"""Small helpers for daemons we start and must find again: pid files, waiting, stopping."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def read_pid(pid_file: Path, must_contain: str) -> int | None:
    """The pid in the file if that process is alive and is what we started (not a reused pid)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return None
    return pid if must_contain in cmdline and pid_alive(pid) else None


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, interval: float = 0.2, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")


def stop_pid(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL: a clean shutdown if it comes, never an orphan."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        wait_until(lambda: not pid_alive(pid), timeout=timeout, what=f"exit of pid {pid}")
    except TimeoutError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_until(lambda: not pid_alive(pid), timeout=10, what=f"exit of pid {pid} after SIGKILL")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} does not exist)"


def spawn_daemon(args: list[str], *, pid_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """A daemon in a session of its own (Ctrl-C in the terminal does not reach it), its output
    appended to ``log_file`` and its pid written to ``pid_file`` (read back with read_pid)."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    pid_file.write_text(str(proc.pid))
    return proc


def wait_ready(
    proc: subprocess.Popen[bytes],
    check: Callable[[], bool],
    *,
    name: str,
    log_file: Path,
    timeout: float,
    interval: float,
    what: str,
) -> None:
    """wait_until ``check``, failing at once (with the log's last lines) when the daemon exits instead."""

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode}; last lines of {log_file}:\n{tail(log_file)}"
            )
        return check()

    wait_until(ready, timeout=timeout, interval=interval, what=what)
