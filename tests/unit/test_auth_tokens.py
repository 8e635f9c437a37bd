"""Bearer-token verification: what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from carecoord_shared.auth import DEVELOPMENT_JWT_SECRET, InvalidToken, Role, TokenVerifier, mint_token

VERIFIER = TokenVerifier(secret=DEVELOPMENT_JWT_SECRET)


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "sub": "dr-lee",
        "role": "clinician",
        "licensed_states": ["CA"],
        "iat": now,
        "exp": now + 60,
        "iss": "carecoord",
        "aud": "carecoord",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_each_role_round_trips() -> None:
    patient = uuid.uuid4()
    assert VERIFIER.verify(mint_token(Role.PATIENT, "p-1", patient_id=patient)).patient_id == patient
    clinician = VERIFIER.verify(mint_token(Role.CLINICIAN, "dr-lee", licensed_states=["CA", "NY"]))
    assert clinician.licensed_states == {"CA", "NY"} and clinician.licensed_in("NY") and not clinician.licensed_in("TX")
    assert VERIFIER.verify(mint_token(Role.OPERATOR, "ops")).role is Role.OPERATOR
    assert VERIFIER.verify(mint_token(Role.SERVICE, "billing")).role is Role.SERVICE


# Each token is made when its case runs, not when the module is collected: a case's 60 s expiry must not
# run out while the rest of a long suite runs first.
@pytest.mark.parametrize(
    ("make_token", "why"),
    [
        (lambda: jwt.encode(claims(), "another-secret-entirely-of-enough-length", algorithm="HS256"), "not valid"),
        (lambda: jwt.encode(claims(exp=int(time.time()) - 3600), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "expired"),
        (lambda: jwt.encode(claims(aud="someone-else"), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "not valid"),
        (lambda: jwt.encode(claims(iss="evil"), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "not valid"),
        (lambda: jwt.encode(claims(exp=None), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "not valid"),
        (lambda: jwt.encode(claims(role="admin"), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "no known role"),
        (lambda: jwt.encode(claims(role="patient"), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "patient_id"),
        (
            lambda: jwt.encode(claims(licensed_states=["XX"]), DEVELOPMENT_JWT_SECRET, algorithm="HS256"),
            "licensed_states",
        ),
        (
            lambda: jwt.encode(claims(licensed_states="CA"), DEVELOPMENT_JWT_SECRET, algorithm="HS256"),
            "licensed_states",
        ),
        (lambda: jwt.encode(claims(sub=""), DEVELOPMENT_JWT_SECRET, algorithm="HS256"), "subject"),
        # An unsigned token ("alg": "none") must never pass.
        (lambda: jwt.encode(claims(), None, algorithm="none"), "not valid"),
        (lambda: "not-a-jwt", "not valid"),
    ],
    ids=[
        "forged",
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "no-expiry",
        "unknown-role",
        "patient-without-id",
        "bad-state",
        "states-not-a-list",
        "empty-subject",
        "alg-none",
        "garbage",
    ],
)
def test_refused_tokens_say_why(make_token: Callable[[], str], why: str) -> None:
    with pytest.raises(InvalidToken, match=why):
        VERIFIER.verify(make_token())


def test_with_a_public_key_only_the_identity_providers_signature_counts() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(secret=DEVELOPMENT_JWT_SECRET, public_key=public_pem)
    assert verifier.verify(jwt.encode(claims(), key, algorithm="RS256")).subject == "dr-lee"
    # Knowing the development secret (or the public key, the classic HS256 confusion) gets nobody in.
    with pytest.raises(InvalidToken):
        verifier.verify(mint_token(Role.SERVICE, "intruder"))
    with pytest.raises(InvalidToken):
        verifier.verify(hs256_by_hand(claims(), public_pem.encode()))


def hs256_by_hand(payload: dict[str, object], key: bytes) -> str:
    """HS256 signed with the public key's bytes: PyJWT refuses to make one, an attacker would not."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + b"." + b64(json.dumps(payload).encode())
    return (signing_input + b"." + b64(hmac.new(key, signing_input, hashlib.sha256).digest())).decode()
