"""`carecoord status` on the real stack, with one service's readiness replaced by a canned body:
ready (HTTP 200) but stalled is unhealthy, exit 1, with what is wrong and what to do; the body of
a service older than issue 19 (no stall fields) is healthy."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carecoord_devstack.stack import Stack
from tests.e2e.cli_io import carecoord, environment

pytestmark = pytest.mark.e2e

OLDER = {
    "status": "ok",
    "service": "billing",
    "checks": {"database": "ok", "kafka": "ok", "outbox": {"backlog": 0, "oldest_age_s": None}},
}
STALLED = {
    **OLDER,
    "checks": {
        **OLDER["checks"],
        "consumer": {
            "stalled_partitions": [{"topic": "intake.patients", "partition": 2, "lag": 4, "stalled_s": 95.0}],
            "parked_keys": 0,
        },
    },
    "degraded": ["consumer stalled on intake.patients[2]"],
}


class _Readiness:
    """A /health/ready that answers 200 with whatever body the test sets."""

    def __init__(self) -> None:
        self.body: dict[str, Any] = OLDER
        readiness = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = json.dumps(readiness.body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def billing_readiness() -> Iterator[_Readiness]:
    readiness = _Readiness()
    thread = threading.Thread(target=readiness.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield readiness
    finally:
        readiness.server.shutdown()
        readiness.server.server_close()


async def test_a_ready_but_stalled_service_makes_status_unhealthy_and_says_what_to_do(
    services: Stack, billing_readiness: _Readiness
) -> None:
    env = environment(services)
    older = await carecoord(env, "--service-url", f"billing={billing_readiness.url}", "status")
    assert older.returncode == 0, older.stdout + older.stderr

    billing_readiness.body = STALLED
    stalled = await carecoord(env, "--service-url", f"billing={billing_readiness.url}", "status")
    assert stalled.returncode == 1, stalled.stdout + stalled.stderr
    assert "intake.patients[2] stalled for 95s with 4 record(s) waiting" in stalled.stdout
    assert "what to do:" in stalled.stdout and "unhealthy" in stalled.stdout
    assert "Traceback" not in stalled.stdout + stalled.stderr

    as_json = await carecoord(env, "--service-url", f"billing={billing_readiness.url}", "status", "--json")
    report = json.loads(as_json.stdout)
    [billing] = [s for s in report["services"] if s["service"] == "billing"]
    assert as_json.returncode == 1 and not report["healthy"] and billing["ready"]
    assert [p["what"] for p in billing["problems"]] == [
        "intake.patients[2] stalled for 95s with 4 record(s) waiting",
        "reports itself degraded: consumer stalled on intake.patients[2]",
    ]
