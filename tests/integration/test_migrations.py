"""Each service's Alembic migrations build exactly the schema its models declare."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.persistence import upgrade_to_head
from tests.services import built


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_models(stack: Stack, service: str) -> None:
    url = await scratch_database(stack, f"{service}_schema_check", service)
    definition = built(service)
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)  # a second run is a no-op

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), definition.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: models and migrations disagree: {diff}"
