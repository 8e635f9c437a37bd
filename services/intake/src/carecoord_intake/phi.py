"""Field-by-field encryption of PHI at rest (names, date of birth, contact details, member ids, free text).

Fernet (AES-128-CBC + HMAC-SHA256) with a key list: MultiFernet encrypts with
the first key and decrypts with any, so keys rotate without downtime.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

# The patient's identifying details, each stored encrypted in the patients row's <name>_enc column.
PHI_FIELDS = ("first_name", "last_name", "date_of_birth", "sex", "email", "phone", "address")


class PhiCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one PHI key is needed")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def encrypt_optional(self, value: str | None) -> str | None:
        return None if value is None else self.encrypt(value)

    def decrypt_optional(self, token: str | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def rotate(self, token: str) -> str:
        """The same value encrypted under the current (first) key."""
        return self._fernet.rotate(token.encode()).decode()


@dataclass(frozen=True)
class Demographics:
    """PHI as the API received it; only ever stored encrypted."""

    first_name: str
    last_name: str
    date_of_birth: date
    sex: str
    email: str
    phone: str
    address: Mapping[str, str | None]


def encrypt_demographics(cipher: PhiCipher, who: Demographics) -> dict[str, str]:
    """The patients row's encrypted columns ({name}_enc) for these demographics."""
    plain = {
        "first_name": who.first_name,
        "last_name": who.last_name,
        "date_of_birth": who.date_of_birth.isoformat(),
        "sex": who.sex,
        "email": who.email,
        "phone": who.phone,
        "address": json.dumps(dict(who.address), sort_keys=True),
    }
    return {f"{name}_enc": cipher.encrypt(plain[name]) for name in PHI_FIELDS}


def decrypt_demographics(cipher: PhiCipher, row: Any) -> Demographics:
    """The demographics of a patients row."""
    return Demographics(
        first_name=cipher.decrypt(row.first_name_enc),
        last_name=cipher.decrypt(row.last_name_enc),
        date_of_birth=date.fromisoformat(cipher.decrypt(row.date_of_birth_enc)),
        sex=cipher.decrypt(row.sex_enc),
        email=cipher.decrypt(row.email_enc),
        phone=cipher.decrypt(row.phone_enc),
        address=json.loads(cipher.decrypt(row.address_enc)),
    )
