"""`make run`, then the README's manual steps and its `carecoord` commands exactly as written, then Ctrl-C:
everything it started stops, with no process left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from carecoord_devstack.paths import LOCAL, REPO_ROOT
from carecoord_devstack.process import port_open

pytestmark = pytest.mark.e2e

DEFAULT_PORTS = (19092, 19093, 15432, 9411, 8001, 8002, 8003, 8004, 8005, 8006)


def _readme_block(name: str = "manual-steps") -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name}:start -->\n```sh\n(.*?)```\n<!-- {name}:end -->", readme, re.S)
    assert block, f"README.md lost its {name} block"
    return block.group(1)


def _one_trace_across(services: list[str], timeout: float = 90) -> str:
    """The id of a trace in Zipkin that holds spans of every named service.

    A wait, not a timing target: on a loaded CI machine (one fresh run took 13 min of pytest against
    the usual 7) four services batch-export their spans and Zipkin indexes them later than 30 s."""
    deadline = time.monotonic() + timeout
    while True:
        # Zipkin answers the newest traces first: the journey's must not fall behind the demo's later ones.
        traces = httpx.get(
            "http://127.0.0.1:9411/api/v2/traces", params={"serviceName": "carecoord-safety", "limit": 1000}, timeout=5
        ).json()
        for spans in traces:
            if set(services) <= {s.get("localEndpoint", {}).get("serviceName") for s in spans}:
                return str(spans[0]["traceId"])
        assert time.monotonic() < deadline, f"no trace in Zipkin spans {services}"
        time.sleep(1)


def _our_processes() -> list[str]:
    """Command lines of live processes that belong to the make-run stack."""
    state = str(LOCAL / "stack")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state in cmd or (re.search(r"-m carecoord_[a-z]+", cmd) and _serves_default_port(pid)):
            found.append(f"{pid}: {cmd[:160]}")
    return found


def _serves_default_port(pid: str) -> bool:
    """A service process of the make-run stack (the test stack's use other ports)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(re.fullmatch(rb"CARECOORD_HTTP_PORT=800[1-6]", e) for e in environ)


def test_make_run_then_the_readme_steps_then_ctrl_c() -> None:
    busy = [p for p in DEFAULT_PORTS if port_open("127.0.0.1", p)]
    if busy:
        pytest.skip(f"ports {busy} are in use (a `make run` stack already up?); this test needs them free")
    leftovers = _our_processes()
    assert not leftovers, f"processes of an earlier make-run stack are alive: {leftovers}"

    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 240
        while not any("carecoord is running." in line for line in output):
            assert proc.poll() is None, "make run exited early:\n" + "".join(output)
            assert time.monotonic() < deadline, "make run did not come up:\n" + "".join(output)
            time.sleep(0.5)
        banner = "".join(output)
        for port in (8001, 8002, 8003, 8004, 8005, 8006):
            assert f"http://127.0.0.1:{port}" in banner

        steps = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_block()],
            cwd=REPO_ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert steps.returncode == 0, f"README steps failed:\n{steps.stdout}\n{steps.stderr}"
        lines = [json.loads(line) for line in steps.stdout.splitlines() if line.strip()]
        activated, reported, reviews, paused, received, resolved, resumed = lines
        assert activated["status"] == "active"
        assert reported["escalated"] and reported["hold_requested"]
        assert [r["status"] for r in reviews["items"]] == ["open"]
        assert paused["status"] == "paused"
        assert {"ClinicianReviewOpened", "TreatmentPlanPaused"} <= {e["event_type"] for e in received["items"]}
        assert resolved["status"] == "resolved"
        assert resumed["status"] == "active"

        cli = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", _readme_block("cli-demo")],
            cwd=REPO_ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=240,
            env={k: v for k, v in os.environ.items() if not k.startswith("CARECOORD_")},
        )
        assert cli.returncode == 0, f"README's carecoord commands failed:\n{cli.stdout}\n{cli.stderr}"
        assert "Demo complete" in cli.stdout and cli.stdout.rstrip().endswith("healthy")

        # The trace dashboard: the demo's journey is one trace in Zipkin, across the services.
        trace = _one_trace_across(["carecoord-safety", "carecoord-dosing", "carecoord-scheduling", "carecoord-billing"])
        assert trace in cli.stdout, "the demo prints the link to its trace"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        reader.join(5)

    assert "stopped." in "".join(output), "".join(output)[-3000:]
    time.sleep(0.5)
    assert _our_processes() == [], "Ctrl-C left processes behind"
    assert [p for p in DEFAULT_PORTS if port_open("127.0.0.1", p)] == []
