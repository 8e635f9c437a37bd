"""Re-encrypting stored PHI under the newest key, so that an old key can be retired.

Rotation: put the new key first in CARECOORD_PHI_KEYS (keeping the old ones),
restart intake (new values now use the new key, old ones stay readable), run
`carecoord-intake-rotate-phi-keys` with the same settings, then drop the old
key. Batches commit one by one, so the run can be repeated after a failure.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from carecoord_shared.config import ServiceSettings
from carecoord_shared.persistence import create_engine, create_sessions

from .models import metadata
from .phi import PhiCipher
from .settings import IntakeSettings

ENCRYPTED_SUFFIX = "_enc"


def encrypted_columns() -> dict[Table, list[str]]:
    """Every column holding PHI, found by its naming convention so a new one cannot be forgotten."""
    found: dict[Table, list[str]] = {}
    for table in metadata.sorted_tables:
        columns = [c.name for c in table.columns if c.name.endswith(ENCRYPTED_SUFFIX)]
        if columns:
            found[table] = columns
    return found


async def reencrypt_all(sessions: async_sessionmaker[AsyncSession], cipher: PhiCipher, *, batch_size: int = 500) -> int:
    """Re-encrypt every PHI value under the cipher's first key; returns how many rows were rewritten."""
    rewritten = 0
    for table, columns in encrypted_columns().items():
        [key] = table.primary_key.columns
        after: Any = None
        while True:
            async with sessions() as session, session.begin():
                query = select(key, *(table.c[c] for c in columns)).order_by(key).limit(batch_size).with_for_update()
                if after is not None:
                    query = query.where(key > after)
                rows = (await session.execute(query)).all()
                for row in rows:
                    values = {c: cipher.rotate(getattr(row, c)) for c in columns if getattr(row, c) is not None}
                    if values:
                        await session.execute(update(table).where(key == row[0]).values(**values))
                        rewritten += 1
            if len(rows) < batch_size:
                break
            after = rows[-1][0]
    return rewritten


async def _run() -> int:
    engine = create_engine(ServiceSettings(service="intake").database_url)
    try:
        keys = [k.get_secret_value() for k in IntakeSettings().phi_keys]
        return await reencrypt_all(create_sessions(engine), PhiCipher(keys))
    finally:
        await engine.dispose()


def main() -> None:
    print(f"re-encrypted {asyncio.run(_run())} rows under the first key of CARECOORD_PHI_KEYS")
