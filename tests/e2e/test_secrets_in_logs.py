"""No bearer token, token secret or database credential reaches a log line or a span."""

from __future__ import annotations

import uuid

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, Role, mint_token
from tests.auth import api_client, clinician_token
from tests.conftest import eventually
from tests.e2e.journeys import url

PLAN_ROUTE = "/v1/patients/{patient_id}/plan"


def _dosing_plan_spans(services: Stack) -> int:
    """Dosing's exported server spans of the plan route (the JSON lines, read as text)."""
    lines = [
        line
        for path in (services.state_dir / "traces").glob("*.jsonl")
        for line in path.read_text(errors="replace").splitlines()
    ]
    return sum(1 for line in lines if '"carecoord-dosing"' in line and '"SERVER"' in line and PLAN_ROUTE in line)


def _denials(services: Stack) -> int:
    return services.services["dosing"].log_file.read_text(errors="replace").count("access.denied")


async def test_credentials_never_reach_logs_or_spans(services: Stack) -> None:
    accepted = mint_token(Role.SERVICE, f"secret-canary-{uuid.uuid4().hex[:8]}")
    refused = mint_token(Role.SERVICE, "forger", secret="a-forged-secret-of-sufficient-length")
    clinician = clinician_token(f"dr-canary-{uuid.uuid4().hex[:6]}", ["CA"])
    patient = uuid.uuid4()
    spans_before, denials_before = _dosing_plan_spans(services), _denials(services)
    # Accepted, forged and refused-by-rule calls all go through the authentication code and its logging.
    for token, expected in ((accepted, {200, 404}), (refused, {401}), (clinician, {403})):
        async with api_client(token) as http:
            response = await http.get(url(services, "dosing", f"/v1/patients/{patient}/plan"))
        assert response.status_code in expected, response.text

    # Positive controls: these very calls were logged and traced, so a clean scan below means the
    # files hold what the calls wrote and none of it is a secret, not that nothing was written.
    await eventually(
        lambda: _dosing_plan_spans(services) >= spans_before + 3 or None, what="the three calls' server spans exported"
    )
    assert _denials(services) > denials_before, "the clinician's refused call was logged"

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
    leaks = [
        f"{name} in {path.name}"
        for path in files
        for name, secret in secrets.items()
        if secret in path.read_text(errors="replace")
    ]
    assert leaks == []
