"""Where the stack is: Kafka bootstrap and each service's base URL.

Defaults match `make run`; every value can be overridden by an option or an
environment variable (CARECOORD_KAFKA_BOOTSTRAP, CARECOORD_<SERVICE>_URL), so
the same commands work against a test stack on free ports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from carecoord_contracts.services import DEFAULT_HTTP_PORTS
from carecoord_contracts.tokens import DEVELOPMENT_JWT_SECRET, Role
from carecoord_contracts.topics import SERVICES

from .tokens import mint_token

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:19092"
# Where an operator opens a trace: the Zipkin UI of `make run` by default; the
# container stack's Jaeger is http://localhost:16686/trace/{trace_id}.
TRACE_URL = os.environ.get("CARECOORD_TRACE_URL", "http://127.0.0.1:9411/zipkin/traces/{trace_id}")


def url_variable(service: str) -> str:
    return f"CARECOORD_{service.upper()}_URL"


@dataclass(frozen=True)
class Target:
    kafka_bootstrap: str = DEFAULT_KAFKA_BOOTSTRAP
    urls: dict[str, str] = field(default_factory=dict)
    # The bearer token the commands call the services with.
    token: str = ""

    @classmethod
    def from_environment(cls, kafka_bootstrap: str | None = None, service_urls: dict[str, str] | None = None) -> Target:
        """Options first, then environment variables, then `make run`'s defaults."""
        urls = {
            service: (service_urls or {}).get(service)
            or os.environ.get(url_variable(service))
            or f"http://127.0.0.1:{DEFAULT_HTTP_PORTS[service]}"
            for service in SERVICES
        }
        bootstrap = kafka_bootstrap or os.environ.get("CARECOORD_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP
        return cls(kafka_bootstrap=bootstrap, urls={s: u.rstrip("/") for s, u in urls.items()}, token=cli_token())

    def url(self, service: str, path: str) -> str:
        return f"{self.urls[service]}{path}"


def cli_token() -> str:
    """CARECOORD_TOKEN when set (any real deployment: a token from the identity provider);
    otherwise a short-lived service token signed with the development secret, which
    only a local stack (`make run`, the test suite) accepts."""
    token = os.environ.get("CARECOORD_TOKEN")
    if token:
        return token
    return mint_token(Role.SERVICE, "carecoord-cli", secret=signing_secret(), ttl_s=3600)


def operator_token() -> str:
    """For what only an operator may do (releasing parked patients): CARECOORD_TOKEN when set,
    otherwise an operator token signed with the development secret (a local stack only)."""
    token = os.environ.get("CARECOORD_TOKEN")
    if token:
        return token
    return mint_token(Role.OPERATOR, "carecoord-cli-operator", secret=signing_secret(), ttl_s=3600)


def patient_token(patient_id: str) -> str:
    """The patient's own token, as the patient app holds it, signed with the development secret (a local
    stack only): the demo signs the treatment consent as the patient, since no one else may (ADR 0016)."""
    return mint_token(Role.PATIENT, f"demo-{patient_id[:8]}", secret=signing_secret(), patient_id=patient_id)


def signing_secret() -> str:
    """The secret a local stack signs tokens with: the services' own setting, else the development default."""
    return os.environ.get("CARECOORD_AUTH_JWT_SECRET", DEVELOPMENT_JWT_SECRET)
