"""PostgreSQL TLS is configuration: `?ssl=<mode>` on CARECOORD_DATABASE_URL (and
PGSSLROOTCERT for the CA), read by asyncpg, as docs/security.md says.

The embedded PostgreSQL wheel is built without OpenSSL ("SSL is not supported by
this build"), so no server here can complete a TLS handshake. What this shows is
the client half: the setting reaches the service's engine and migrations, and a
service told to use TLS refuses to fall back to plaintext.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

import carecoord_safety.app
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.persistence import create_engine, upgrade_to_head
from tests.tls import server_certificate


async def test_a_service_configured_for_tls_will_not_talk_plaintext(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGSSLROOTCERT", str(server_certificate(tmp_path).ca))
    url = await scratch_database(stack, "safety_tls_check", "safety")
    engine = create_engine(url)  # control: the same server without the TLS setting answers
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()

    for mode in ("require", "verify-full"):
        engine = create_engine(f"{url}?ssl={mode}")
        try:
            with pytest.raises(Exception, match="rejected SSL upgrade"):
                async with engine.connect():
                    pass
        finally:
            await engine.dispose()
    monkeypatch.delenv("PGSSLROOTCERT")  # verify-full without a CA to verify against: no connection at all
    with pytest.raises(Exception, match="root certificate file"):
        async with create_engine(f"{url}?ssl=verify-full").connect():
            pass
    with pytest.raises(Exception, match="rejected SSL upgrade"):
        await asyncio.to_thread(upgrade_to_head, f"{url}?ssl=require", carecoord_safety.app.MIGRATIONS)
