"""Each service's Alembic migrations build exactly the schema its models declare."""

from __future__ import annotations

import asyncio
import importlib

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from carecoord_devstack.stack import Stack
from carecoord_shared.contracts.topics import SERVICES
from carecoord_shared.persistence import upgrade_to_head


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(stack: Stack, service: str) -> None:
    database = f"{service}_schema_check"
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f'CREATE DATABASE {database} OWNER "{service}"')
    finally:
        await conn.close()
    url = stack.postgres.service_url(service).rsplit("/", 1)[0] + f"/{database}"
    app = importlib.import_module(f"carecoord_{service}.app")
    await asyncio.to_thread(upgrade_to_head, url, app.definition.migrations_dir)
    await asyncio.to_thread(upgrade_to_head, url, app.definition.migrations_dir)  # a second run is a no-op

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), app.definition.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: models and migrations disagree: {diff}"
