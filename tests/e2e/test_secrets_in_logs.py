"""No bearer token, token secret or database credential reaches a log line or a span."""

from __future__ import annotations

import uuid

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, Role, mint_token
from carecoord_shared.contracts.topics import SERVICES
from tests.auth import api_client, clinician_token
from tests.e2e.journeys import url


async def test_credentials_never_reach_logs_or_spans(services: Stack) -> None:
    accepted = mint_token(Role.SERVICE, f"secret-canary-{uuid.uuid4().hex[:8]}")
    refused = mint_token(Role.SERVICE, "forger", secret="a-forged-secret-of-sufficient-length")
    clinician = clinician_token(f"dr-canary-{uuid.uuid4().hex[:6]}", ["CA"])
    patient = uuid.uuid4()
    # Accepted, forged and refused-by-rule calls all go through the authentication code and its logging.
    for token, expected in ((accepted, {200, 404}), (refused, {401}), (clinician, {403})):
        async with api_client(token) as http:
            response = await http.get(url(services, "dosing", f"/v1/patients/{patient}/plan"))
        assert response.status_code in expected, response.text

    secrets = {
        "accepted token": accepted,
        "refused token": refused,
        "clinician token": clinician,
        "token signature": accepted.rsplit(".", 1)[1],
        "token secret": DEVELOPMENT_JWT_SECRET,
        **{f"{s} database URL": services.postgres.service_url(s) for s in SERVICES},
    }
    files = [*(services.state_dir / "logs").glob("*.log"), *(services.state_dir / "traces").glob("*.jsonl")]
    assert len(files) >= len(SERVICES) * 2
    leaks = [f"{name} in {path.name}" for path in files for name, secret in secrets.items() if secret in path.read_text(errors="replace")]
    assert leaks == []
