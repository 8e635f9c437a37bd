"""Bearer tokens (JWT): who is calling, in which role, for which patients.

A token says who (``sub``, an opaque id: never a name or an e-mail address),
the role, and what the role is scoped to: a patient token names the one
patient it is (``patient_id``); a clinician token lists the states the
clinician is licensed in (``licensed_states``). Services trust the signature
and the claims, and look nothing up about the caller. The roles and the claim
shape are published in ``carecoord_contracts.tokens``.

Production verifies tokens of the identity provider with its public key
(RS256/ES256, ``CARECOORD_AUTH_JWT_PUBLIC_KEY``). Development and tests sign
and verify with a shared secret (HS256) so that `make run` and the test suite
can mint tokens; a service refuses to start in production mode with the
development secret (see ``ServiceSettings``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt

from carecoord_contracts.common import US_STATES
from carecoord_contracts.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER, DEVELOPMENT_JWT_SECRET, Role, token_claims

__all__ = [
    "DEFAULT_AUDIENCE",
    "DEFAULT_ISSUER",
    "DEVELOPMENT_JWT_SECRET",
    "PUBLIC_KEY_ALGORITHMS",
    "InvalidToken",
    "Principal",
    "Role",
    "TokenVerifier",
    "mint_token",
    "principal_from_claims",
]

# Asymmetric algorithms a production identity provider signs with; never "none".
PUBLIC_KEY_ALGORITHMS = ("RS256", "ES256")


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or for someone else. The message is safe to return."""


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    patient_id: uuid.UUID | None = None
    licensed_states: frozenset[str] = field(default_factory=frozenset)

    def is_patient(self, patient_id: uuid.UUID) -> bool:
        return self.role is Role.PATIENT and self.patient_id == patient_id

    def licensed_in(self, state: str | None) -> bool:
        return self.role is Role.CLINICIAN and state is not None and state in self.licensed_states


@dataclass(frozen=True)
class TokenVerifier:
    secret: str = ""
    public_key: str = ""
    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    leeway_s: int = 30

    def __post_init__(self) -> None:
        if not self.secret and not self.public_key:
            raise ValueError("a token verifier needs a public key (production) or a secret (development)")

    def verify(self, token: str) -> Principal:
        # A public key, when configured, is the only thing trusted: a token signed
        # with a shared secret is refused even if someone knows the secret.
        key, algorithms = (
            (self.public_key, list(PUBLIC_KEY_ALGORITHMS)) if self.public_key else (self.secret, ["HS256"])
        )
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["sub", "exp", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the bearer token has expired") from None
        except jwt.InvalidTokenError as exc:
            # PyJWT's messages name the claim or the check, never the token's content.
            raise InvalidToken(f"the bearer token is not valid: {exc}") from None
        return principal_from_claims(claims)


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise InvalidToken(f"the bearer token has no known role (one of {', '.join(Role)})") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 128:
        raise InvalidToken("the bearer token's subject must be a string of 1-128 characters")
    patient_id = None
    if role is Role.PATIENT:
        try:
            patient_id = uuid.UUID(str(claims.get("patient_id")))
        except ValueError:
            raise InvalidToken("a patient's bearer token must carry the patient_id it is for") from None
    states: frozenset[str] = frozenset()
    if role is Role.CLINICIAN:
        raw = claims.get("licensed_states")
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw) or not set(raw) <= US_STATES:
            raise InvalidToken("a clinician's bearer token must list licensed_states as US state codes")
        states = frozenset(raw)
    return Principal(subject=subject, role=role, patient_id=patient_id, licensed_states=states)


def mint_token(
    role: Role | str,
    subject: str,
    *,
    secret: str = DEVELOPMENT_JWT_SECRET,
    patient_id: uuid.UUID | str | None = None,
    licensed_states: Iterable[str] = (),
    ttl_s: int = 3600,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """An HS256 token, as a development identity provider would issue it (tests, `carecoord token`)."""
    claims = token_claims(
        role,
        subject,
        patient_id=patient_id,
        licensed_states=licensed_states,
        ttl_s=ttl_s,
        issuer=issuer,
        audience=audience,
    )
    return jwt.encode(claims, secret, algorithm="HS256")
