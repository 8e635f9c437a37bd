"""Database plumbing: async engine and sessions, and Alembic migrations per service.

Each service keeps its migrations in its own package (``migrations/``, with an
``env.py`` that calls :func:`run_alembic_env`) and applies them at start-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, event, pool
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

# A pooled connection older than this is replaced at its next check-out (see create_engine).
POOL_RECYCLE_S = 1800


def create_engine(database_url: str) -> AsyncEngine:
    """The service's engine: a pool of up to 20 connections, checked out without a round trip.

    All 20 are kept once made (no overflow): with 10 kept and 10 more as overflow, a burst of
    requests opened connections that were closed again as soon as they were returned, 40 in 12 s
    at 50 reports/s, each a new backend, a SCRAM exchange and asyncpg's set-up on both sides'
    CPUs, and the request that made it waited for all of that. The most the pool holds is as before.

    No ``pool_pre_ping``: with asyncpg it costs three round trips at every check-out (BEGIN, an
    empty query, ROLLBACK), a third of what a handled event cost. What it guarded against, a
    pooled connection the server closed (a PostgreSQL restart, ``pg_terminate_backend``, an idle
    timeout), is handled so instead:

    - at check-out, a connection the driver already knows to be closed (the server's goodbye and
      the socket's end were read while it sat in the pool) is discarded and another one taken:
      a local check, no round trip (:func:`_discard_closed`);
    - one whose loss is not known yet fails at its first statement; SQLAlchemy then invalidates
      it (and the rest of the pool's, older ones, on a disconnect error), the consumer retries an
      unavailable database without bound (``messaging.errors.is_unavailable``), and an HTTP
      request gets a 503 with Retry-After (``service.py``), never a 500;
    - ``pool_recycle`` replaces connections older than ``POOL_RECYCLE_S`` at check-out, so one
      silently dropped by something in between (a proxy's or firewall's idle limit) is not kept
      for ever.
    """
    # hide_parameters: error messages (logged, put on spans) must not quote row values.
    engine = create_async_engine(
        database_url, pool_size=20, max_overflow=0, pool_recycle=POOL_RECYCLE_S, hide_parameters=True
    )
    event.listen(engine.sync_engine, "checkout", _discard_closed)
    return engine


def _discard_closed(dbapi_connection: Any, _record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
    """Refuse a pooled connection the driver knows is closed: the pool then takes another (or a new one)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def create_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(database_url: str, migrations_dir: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade_to_head(database_url: str, migrations_dir: Path) -> None:
    """Apply every pending migration (blocking: call it from a thread inside a loop)."""
    command.upgrade(alembic_config(database_url, migrations_dir), "head")


def run_alembic_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py."""
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def online() -> None:
        if url is None:
            raise RuntimeError("the alembic config names no sqlalchemy.url")
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(_run_with_connection, metadata)
        await engine.dispose()

    asyncio.run(online())


def _run_with_connection(connection: Connection, metadata: MetaData) -> None:
    from alembic import context

    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
