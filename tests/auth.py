"""Bearer tokens for the tests, minted with the development secret the test stack's services trust."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import httpx

from carecoord_devstack.stack import Stack
from carecoord_shared.auth import Role, mint_token

# The suite's own system account: the tests that exercise business flows call as
# a service; tests/e2e/test_authorization.py is where the other roles are tried.
SERVICE_TOKEN = mint_token(Role.SERVICE, "carecoord-test-suite", ttl_s=24 * 3600)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def patient_token(patient_id: uuid.UUID | str, subject: str | None = None) -> str:
    return mint_token(Role.PATIENT, subject or f"patient-{uuid.uuid4().hex[:8]}", patient_id=patient_id)


def clinician_token(clinician_id: str, licensed_states: Iterable[str]) -> str:
    return mint_token(Role.CLINICIAN, clinician_id, licensed_states=licensed_states)


def operator_token(subject: str = "operator-on-call") -> str:
    return mint_token(Role.OPERATOR, subject)


def service_token(subject: str) -> str:
    """A token of another system account than the suite's own (to tell its audit rows apart)."""
    return mint_token(Role.SERVICE, subject)


def api_client(token: str = SERVICE_TOKEN, **kwargs: Any) -> httpx.AsyncClient:
    """An HTTP client that calls as ``token``'s holder (the test suite's service account by default)."""
    kwargs.setdefault("timeout", 10)
    return httpx.AsyncClient(headers=bearer(token), **kwargs)


def service_client(
    stack: Stack, service: str, token: str = SERVICE_TOKEN, *, timeout: float = 10.0
) -> httpx.AsyncClient:
    """A client for one service of ``stack``: paths relative to it (``/v1/...``)."""
    return api_client(token, base_url=stack.services[service].url, timeout=timeout)
