"""Resident set size of the service processes, from /proc/<pid>/status."""

from __future__ import annotations

from pathlib import Path


def parse_vmrss_kib(status_text: str) -> int:
    """The VmRSS line of a /proc/<pid>/status text, in KiB."""
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            if unit != "kB":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(value)
    raise ValueError("no VmRSS line (a kernel thread, or the process has exited)")


def rss_mib(pid: int) -> float:
    return parse_vmrss_kib(Path(f"/proc/{pid}/status").read_text()) / 1024


class PeakRss:
    """The highest RSS seen per service while sampling."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                self.peak[name] = max(self.peak[name], rss_mib(pid))
            except (OSError, ValueError):
                pass  # the process is gone: its last sample stands
