"""Database plumbing: async engine and sessions, and Alembic migrations per service.

Each service keeps its migrations in its own package (``migrations/``, with an
``env.py`` that calls :func:`run_alembic_env`) and applies them at start-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def create_engine(database_url: str) -> AsyncEngine:
    # hide_parameters: error messages (logged, put on spans) must not quote row values.
    return create_async_engine(database_url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


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
