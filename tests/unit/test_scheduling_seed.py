"""The demo clinicians the README tells `make run` users to seed are ones the API accepts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from carecoord_scheduling.domain.policy import Role
from carecoord_scheduling.schemas import ClinicianIn
from carecoord_scheduling.seed import DEMO_CLINICIANS, seed
from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, TokenVerifier
from carecoord_shared.auth import Role as Caller


@pytest.mark.parametrize("clinician_id", sorted(DEMO_CLINICIANS))
def test_every_demo_clinician_is_a_valid_request(clinician_id: str) -> None:
    clinician = ClinicianIn.model_validate(DEMO_CLINICIANS[clinician_id])
    assert clinician.weekly_availability


def test_the_demo_covers_both_roles() -> None:
    assert {ClinicianIn.model_validate(body).role for body in DEMO_CLINICIANS.values()} == set(Role)


def test_the_seed_calls_as_a_service_with_a_token_the_services_accept() -> None:
    """Every route needs a bearer token: a seed without one was answered 401 for each clinician."""
    seen: list[tuple[str, str | None, dict[str, Any]]] = []

    class Scheduling(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            seen.append((self.path, self.headers.get("authorization"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Scheduling)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seed(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        thread.join(5)
    assert [path for path, _, _ in seen] == [f"/v1/clinicians/{c}" for c in DEMO_CLINICIANS]
    verifier = TokenVerifier(secret=DEVELOPMENT_JWT_SECRET)
    for _, authorization, _ in seen:
        assert authorization is not None and authorization.startswith("Bearer ")
        assert verifier.verify(authorization.removeprefix("Bearer ")).role is Caller.SERVICE


def test_dr_lee_can_be_the_readmes_colorado_patients_prescriber() -> None:
    """The README's walkthrough makes dr-lee a Colorado patient's prescriber: a seeded dr-lee must stay licensed there."""
    assert "CO" in DEMO_CLINICIANS["dr-lee"]["licensed_states"]
