"""Reading a patient's PHI from intake as a service, at the moment it is needed and for that use only.

Intake keeps the patient's identity and contact details; billing (claim demographics, for a payer's file)
and engagement (contact details, for one message) fetch them through intake's service-only routes with a
bearer token and keep nothing. One client for both, so both treat intake's answers alike: down or refusing
is "try later", 404 is "no retry helps", an answer that does not validate or names another patient is
refused without quoting it (pydantic's errors quote the values, which are PHI).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from ..auth import Role, mint_token

Answer = TypeVar("Answer", bound=BaseModel)
# A fixed token (production: issued by the identity provider) or one minted per request (development).
TokenSource = SecretStr | Callable[[], SecretStr]


class IntakeUnavailable(RuntimeError):
    """Intake could not answer now (down, refused our token, answered nonsense): try later."""


class PatientUnknown(LookupError):
    """Intake does not know the patient: no retry helps."""


def development_token(
    subject: str, secret: str, *, issuer: str, audience: str, ttl_s: int = 300
) -> Callable[[], SecretStr]:
    """Local runs and tests: a fresh short-lived service token for each request, signed with the development
    secret intake also trusts there (a token minted once would expire under a long run)."""
    return lambda: SecretStr(
        mint_token(Role.SERVICE, subject, secret=secret, issuer=issuer, audience=audience, ttl_s=ttl_s)
    )


class IntakeClient:
    """GET {intake}{path} for one patient with a service's bearer token, validated as ``Answer``."""

    def __init__(
        self,
        base_url: str,
        token: TokenSource,
        *,
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_s
        self._transport = transport

    async def fetch(self, path: str, patient_id: uuid.UUID, answer: type[Answer]) -> Answer:
        """``path`` is intake's route with ``{patient_id}`` in it; the answer must have ``patient_id``."""
        url = self._base_url + path.format(patient_id=patient_id)
        token = self._token if isinstance(self._token, SecretStr) else self._token()
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        try:
            async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as http:
                response = await http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise IntakeUnavailable(f"intake unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise PatientUnknown("intake does not know the patient")
        if response.status_code != 200:
            raise IntakeUnavailable(f"intake answered {response.status_code}")
        try:
            found = answer.model_validate_json(response.content)
        except ValidationError:
            raise IntakeUnavailable("intake's answer does not match the contract") from None
        if getattr(found, "patient_id", None) != patient_id:
            raise IntakeUnavailable("intake answered for another patient")
        return found
