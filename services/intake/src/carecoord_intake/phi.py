"""Field-by-field encryption of PHI at rest (names, date of birth, contact details, member ids, free text).

Fernet (AES-128-CBC + HMAC-SHA256) with a key list: MultiFernet encrypts with
the first key and decrypts with any, so keys rotate without downtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, MultiFernet


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
