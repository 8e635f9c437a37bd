"""Whose CPU a report costs: per service, the broker, PostgreSQL, the bench itself and the rest of the machine.

The maximum is where CPU runs out, so the bench snapshots every process's CPU
time (utime + stime from ``/proc/<pid>/stat``) around the burst, and the
machine's busy time from ``/proc/stat``: what each component spent per
completed report, and how much of the machine went to processes that are not
the stack's (on a shared machine, the reason a run's maximum is low).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    cpu_s: float


def parse_stat(text: str) -> Proc:
    """One ``/proc/<pid>/stat`` line. comm is in parentheses and may hold spaces or ')': split at the last ')'."""
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = rest.split()
    # after comm: state(0) ppid(1) ... utime(11) stime(12)
    return Proc(int(pid), int(fields[1]), comm, (int(fields[11]) + int(fields[12])) * TICK_S)


def machine_busy_s(stat_text: str) -> float:
    """Busy CPU seconds of all CPUs since boot, from the ``cpu`` line of /proc/stat (everything but idle and iowait)."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            # guest time is already counted in user time
            return (sum(values[:8]) - idle) * TICK_S
    raise ValueError("no cpu line in /proc/stat")


def processes() -> list[Proc]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            out.append(parse_stat((entry / "stat").read_text()))
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def components(
    procs: Iterable[Proc],
    services: dict[int, str],
    state_dir: str,
    own_pid: int,
    command_of: Callable[[int], str] = cmdline,
) -> dict[str, float]:
    """CPU seconds per component; a process is the stack's broker or PostgreSQL by its data directory
    (PostgreSQL's backends by being children of that postmaster)."""
    procs = list(procs)
    marked = {p.pid: command_of(p.pid) for p in procs if p.comm in ("java", "postgres")}
    postmasters = {pid for pid, cmd in marked.items() if "postgres" in cmd and state_dir in cmd}
    totals: dict[str, float] = {}
    for p in procs:
        if p.pid in services:
            name = services[p.pid]
        elif p.pid == own_pid:
            name = "bench (load and watcher)"
        elif p.comm == "java" and state_dir in marked.get(p.pid, ""):
            name = "kafka"
        elif p.pid in postmasters or p.ppid in postmasters:
            name = "postgresql"
        else:
            continue
        totals[name] = totals.get(name, 0.0) + p.cpu_s
    return totals


class CpuWindow:
    """CPU per component between ``start()`` and ``stop()``."""

    def __init__(self, services: dict[str, int], state_dir: Path) -> None:
        self._services = {pid: name for name, pid in services.items()}
        self._state_dir = str(state_dir)
        self._before: dict[str, float] = {}
        self._busy_before = 0.0

    def _snapshot(self) -> tuple[dict[str, float], float]:
        busy = machine_busy_s(Path("/proc/stat").read_text())
        return components(processes(), self._services, self._state_dir, os.getpid()), busy

    def start(self) -> None:
        self._before, self._busy_before = self._snapshot()

    def stop(self, per: int) -> dict[str, float]:
        """CPU milliseconds per unit of work (``per``: completed reports) of each component, and of the rest."""
        after, busy = self._snapshot()
        spent = {name: after[name] - self._before.get(name, 0.0) for name in after}
        ours = sum(spent.values())
        spent["rest of the machine"] = max(busy - self._busy_before - ours, 0.0)
        return {name: s * 1000 / max(per, 1) for name, s in sorted(spent.items(), key=lambda kv: -kv[1])}
