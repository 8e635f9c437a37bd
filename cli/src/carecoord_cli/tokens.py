"""Development bearer tokens, signed here with pyjwt.

The claims are the published shape (``carecoord_contracts.tokens.token_claims``),
the same the services' ``mint_token`` signs, so a token minted here is one the
services' verifier accepts; only a local stack trusts the development secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import jwt

from carecoord_contracts.tokens import Role, token_claims


def mint_token(
    role: Role | str,
    subject: str,
    *,
    secret: str,
    patient_id: uuid.UUID | str | None = None,
    licensed_states: Iterable[str] = (),
    ttl_s: int = 3600,
) -> str:
    claims = token_claims(role, subject, patient_id=patient_id, licensed_states=licensed_states, ttl_s=ttl_s)
    return jwt.encode(claims, secret, algorithm="HS256")
