"""Intake's settings (prefix CARECOORD_): the shared ones and its own, read once by the composition root.

The defaults run with `make run`. The PHI key below is a DEVELOPMENT VALUE,
public in this repository: every real deployment sets its own through the
environment. (Billing reads claim demographics with a service's bearer JWT,
checked like every other caller's: intake holds no token of its own for it.)
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from carecoord_contracts.common import US_STATES
from carecoord_shared.config import ServiceSettings

from .rules import CURRENT_VERSION

# DEVELOPMENT KEY ONLY: encrypts PHI in local stacks. Never use it with real patient data.
DEVELOPMENT_PHI_KEY = "snbbo7qcgLA_FjdLTF9XrrkZH-3nQsyGfLG48aGV9Zs="


def _comma_separated(value: object) -> object:
    return [part.strip() for part in value.split(",") if part.strip()] if isinstance(value, str) else value


class IntakeSettings(ServiceSettings):
    service: Literal["intake"] = "intake"

    # Fernet keys, comma-separated, newest first: new values are encrypted with the first,
    # any of them decrypts (rotation: prepend a new key, re-encrypt, then drop the old one).
    phi_keys: Annotated[
        list[SecretStr], NoDecode, Field(min_length=1, default_factory=lambda: [SecretStr(DEVELOPMENT_PHI_KEY)])
    ]
    # USPS codes of the states the provider is licensed in, comma-separated.
    served_states: Annotated[frozenset[str], NoDecode] = frozenset({"CA", "CO", "FL", "IL", "NY", "TX", "WA"})
    eligibility_rules_version: str = CURRENT_VERSION

    _split_keys = field_validator("phi_keys", "served_states", mode="before")(_comma_separated)

    @field_validator("served_states")
    @classmethod
    def known_states(cls, value: frozenset[str]) -> frozenset[str]:
        unknown = value - US_STATES
        if unknown:
            raise ValueError(f"not US state codes: {sorted(unknown)}")
        return value

    @property
    def uses_development_secrets(self) -> bool:
        return DEVELOPMENT_PHI_KEY in {k.get_secret_value() for k in self.phi_keys}
