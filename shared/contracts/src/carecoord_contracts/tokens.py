"""The bearer token's vocabulary: roles, the claims a token carries, and the development defaults.

A token says who (``sub``, an opaque id: never a name or an e-mail address),
the role, and what the role is scoped to: a patient token names the one
patient it is (``patient_id``); a clinician token lists the states the
clinician is licensed in (``licensed_states``). Services verify tokens
(``carecoord_shared.auth.tokens``); development clients (tests, the operator
CLI) mint them with :func:`token_claims`, the one definition of the claim
shape, and sign it HS256 with the development secret.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

# Development and tests sign and verify with this shared secret; a service refuses
# to start in production mode with it (see carecoord_shared.config.ServiceSettings).
DEVELOPMENT_JWT_SECRET = "carecoord-development-signing-secret-not-for-production"
DEFAULT_ISSUER = "carecoord"
DEFAULT_AUDIENCE = "carecoord"


class Role(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"
    OPERATOR = "operator"
    # Another system acting on its own account (an integration, a back office job).
    SERVICE = "service"


def token_claims(
    role: Role | str,
    subject: str,
    *,
    patient_id: uuid.UUID | str | None = None,
    licensed_states: Iterable[str] = (),
    ttl_s: int = 3600,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> dict[str, Any]:
    """The claims of a token as a development identity provider would issue it, valid from now for ``ttl_s``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "role": str(Role(role)),
        "iat": now,
        "exp": now + ttl_s,
        "iss": issuer,
        "aud": audience,
    }
    if patient_id is not None:
        claims["patient_id"] = str(patient_id)
    if Role(role) is Role.CLINICIAN:
        claims["licensed_states"] = sorted(licensed_states)
    return claims
