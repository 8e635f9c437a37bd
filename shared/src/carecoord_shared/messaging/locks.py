"""PostgreSQL advisory lock keys, one key space per use.

Advisory locks are one flat namespace per database: a relay's lock and a
patient's lock that happened to share a number would serialise unrelated
work (a patient's transaction stalling a service's whole outbox). The
two-int form ``pg_advisory_xact_lock(class, id)`` is a key space apart from
the bigint form and, by its first int, from every other class.
"""

from __future__ import annotations

import uuid
import zlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# One class id per use; a new use takes a new number, never a used one.
OUTBOX_RELAY = 1
PATIENT = 2


def object_id(data: bytes) -> int:
    """A stable int4 for ``data`` (crc32, shifted into the signed range)."""
    return zlib.crc32(data) - 2**31


def relay_lock(service: str) -> tuple[int, int]:
    return OUTBOX_RELAY, object_id(f"carecoord.outbox.{service}".encode())


def patient_lock(patient_id: uuid.UUID) -> tuple[int, int]:
    return PATIENT, object_id(patient_id.bytes)


async def lock_for_transaction(session: AsyncSession, key: tuple[int, int]) -> None:
    """Hold ``key`` until the session's transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:c, :o)"), {"c": key[0], "o": key[1]})
