"""A stand-in for intake's internal claim-demographics endpoint, as a real local HTTP server.

Exactly the contract billing relies on: GET
/v1/internal/patients/{id}/claim-demographics with a bearer token (as intake: a
service's JWT signed with the development secret; or one fixed token); 200 with the
demographics, 401 for a wrong token, 403 for a role other than service, 404 for a
patient it does not know.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, InvalidToken, Role, TokenVerifier
from carecoord_shared.http.problems import MEDIA_TYPE, TYPE_BASE

PATH = "/v1/internal/patients/{}/claim-demographics"


def demographics(
    patient_id: uuid.UUID, member_id: str | None, payer_id: str = "ACME1", **overrides: Any
) -> dict[str, Any]:
    body = {
        "patient_id": str(patient_id),
        "first_name": "Jane",
        "last_name": "O'Doe-Smith",
        "date_of_birth": "1980-01-02",
        "sex": "F",
        "address": {"line1": "1 Elm St, Apt 4", "city": "Austin", "state": "TX", "postal_code": "78701"},
        "coverage": None if member_id is None else {"payer_id": payer_id, "member_id": member_id, "plan": "PPO Gold"},
    }
    return {**body, **overrides}


class FakeIntake:
    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.patients: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.url = ""

    def add(self, patient_id: uuid.UUID, member_id: str | None, **overrides: Any) -> None:
        self.patients[str(patient_id)] = demographics(patient_id, member_id, **overrides)

    def refusal(self, authorization: str) -> int | None:
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer":
            return 401
        if self.token is not None:
            return None if token == self.token else 401
        try:
            principal = TokenVerifier(secret=DEVELOPMENT_JWT_SECRET).verify(token)
        except InvalidToken:
            return 401
        return None if principal.role is Role.SERVICE else 403

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if len(parts) != 5 or parts[:3] != ["v1", "internal", "patients"] or parts[4] != "claim-demographics":
                    return self._problem(404, "route_not_found")
                status = fake.refusal(self.headers.get("Authorization", ""))
                if status:
                    return self._problem(status, "unauthenticated" if status == 401 else "forbidden")
                body = fake.patients.get(parts[3])
                return self._answer(200, body) if body else self._problem(404, "not_found")

            def _problem(self, status: int, code: str) -> None:
                # Intake's error answers, in their shape (carecoord_shared.http.problems).
                body = {"type": TYPE_BASE + code, "title": code, "status": status, "detail": code, "code": code}
                return self._answer(status, {**body, "instance": self.path}, MEDIA_TYPE)

            def _answer(self, status: int, body: dict[str, Any], media_type: str = "application/json") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:  # keep test output quiet
                pass

        return Handler


@contextmanager
def running_fake_intake(token: str | None = None) -> Iterator[FakeIntake]:
    fake = FakeIntake(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake._handler())
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-intake", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
