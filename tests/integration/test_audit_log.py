"""The audit log is append-only for the application's own database role.

Each service connects as a login role that owns its database (it runs its own
migrations). Even so, no statement it can send changes or removes an audit row.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.persistence import upgrade_to_head
from tests.services import built


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.mark.parametrize("service", SERVICES)
async def test_the_application_role_can_append_but_never_change_or_remove_audit_rows(
    stack: Stack, service: str
) -> None:
    url = await scratch_database(stack, f"{service}_audit_check", service)
    definition = built(service)
    await asyncio.to_thread(upgrade_to_head, url, definition.migrations_dir)

    conn = await asyncpg.connect(asyncpg_dsn(url))  # as the service's own role, the one its process uses
    try:
        assert await conn.fetchval("SELECT current_user") == service
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        patient = uuid.uuid4()
        await conn.execute(
            "INSERT INTO audit_log (actor, actor_role, action, resource, patient_id, outcome) VALUES ($1, $2, $3, $4, $5, $6)",
            "dr-lee",
            "clinician",
            "read",
            "plan",
            patient,
            "allowed",
        )
        refused = {
            "UPDATE": "UPDATE audit_log SET outcome = 'denied'",
            "DELETE": "DELETE FROM audit_log",
            "TRUNCATE": "TRUNCATE audit_log",
        }
        for operation, statement in refused.items():
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=f"append-only: {operation}"):
                await conn.execute(statement)
        # The way round triggers is a superuser's privilege, not the application's.
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("SET session_replication_role = replica")
        rows = await conn.fetch("SELECT actor, outcome, patient_id FROM audit_log")
        assert [(r["actor"], r["outcome"], r["patient_id"]) for r in rows] == [("dr-lee", "allowed", patient)]
    finally:
        await conn.close()
