"""HTTP requests after the pool's connections died, now that check-out does not ping (issue 22).

``pool_pre_ping`` cost three round trips at every check-out. Without it, a pooled connection the
server closed (a PostgreSQL restart; ``pg_terminate_backend`` is the same thing for the pool) is
found closed at check-out and replaced, and a database that cannot be reached answers a clean 503
with Retry-After, as a part that is not ready does, instead of a 500. One service (dosing) in
process through the service harness, its engine behind a proxy that can cut it off the server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from carecoord_devstack.scratch import scratch_database
from carecoord_devstack.stack import Stack
from carecoord_shared.persistence import create_engine
from tests.auth import patient_token
from tests.service_harness import ServiceHarness
from tests.tcp_proxy import TcpProxy

DATABASE = "dosing_reconnect_it"


@pytest.fixture
async def proxy(stack: Stack) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy.start(stack.postgres.port)
    yield proxy
    await proxy.close()


@pytest.fixture
async def dosing(stack: Stack, proxy: TcpProxy) -> AsyncIterator[ServiceHarness]:
    url = stack.postgres.service_url("dosing").rsplit("/", 1)[0] + f"/{DATABASE}"
    proxied = url.replace(f":{stack.postgres.port}/", f":{proxy.port}/")
    # Migrations go straight to the server (the harness runs them on the database it makes).
    async with ServiceHarness.running(stack, "dosing", database=DATABASE, database_url=proxied) as harness:
        yield harness


async def _terminate_connections(stack: Stack) -> int:
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            DATABASE,
        )
    finally:
        await conn.close()
    return len(rows)


async def _gone(stack: Stack) -> None:
    """Until the server processes of the database have exited."""
    while await _count_connections(stack):
        await asyncio.sleep(0.02)


async def _count_connections(stack: Stack) -> int:
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", DATABASE))
    finally:
        await conn.close()


async def test_a_request_after_the_server_closed_the_pooled_connections_is_answered(
    stack: Stack, dosing: ServiceHarness
) -> None:
    assert (await dosing.http.get("/v1/ops/parked")).status_code == 200  # a pooled connection now
    assert await _terminate_connections(stack) >= 1
    await _gone(stack)
    await asyncio.sleep(0.1)  # the server's goodbye reaches the idle connection's socket

    response = await dosing.http.get("/v1/ops/parked")

    assert response.status_code == 200, response.text


async def test_the_first_use_of_a_connection_whose_loss_is_not_known_yet_is_a_503_and_the_next_request_is_answered(
    stack: Stack, dosing: ServiceHarness
) -> None:
    """The one case check-out cannot see (the server's goodbye not read yet: this loop blocked
    while the connections are terminated, as at the instant of a restart): the request's first
    statement fails on the dead connection; it is a 503 with Retry-After, never a 500, and the
    pool has dropped the connection, so the next request is answered."""
    assert (await dosing.http.get("/v1/ops/parked")).status_code == 200
    with ThreadPoolExecutor(1) as other_loop:  # blocks this loop until the server processes are gone
        assert other_loop.submit(asyncio.run, _terminate_and_wait(stack)).result() >= 1

    response = await dosing.http.get("/v1/ops/parked")

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "unavailable"
    assert (await dosing.http.get("/v1/ops/parked")).status_code == 200


async def _terminate_and_wait(stack: Stack) -> int:
    terminated = await _terminate_connections(stack)
    await _gone(stack)
    return terminated


async def test_while_the_database_cannot_be_reached_a_request_gets_a_503_with_retry_after(
    stack: Stack, dosing: ServiceHarness, proxy: TcpProxy
) -> None:
    assert (await dosing.http.get("/v1/ops/parked")).status_code == 200
    port = proxy.port
    await proxy.close()  # pooled connections cut, new ones refused

    response = await dosing.http.get("/v1/ops/parked")

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.json()["code"] == "unavailable"
    back = await TcpProxy.start(stack.postgres.port, port)
    try:
        assert (await dosing.http.get("/v1/ops/parked")).status_code == 200
    finally:
        await back.close()


async def test_a_change_whose_database_went_away_is_a_503_that_does_not_invite_a_blind_retry(
    stack: Stack, dosing: ServiceHarness, proxy: TcpProxy
) -> None:
    """The connection may have gone during COMMIT: the answer says the outcome is unknown and how
    to resend safely, and carries no Retry-After for a client's automatic retry."""
    assert (await dosing.http.get("/v1/ops/parked")).status_code == 200
    port = proxy.port
    await proxy.close()

    response = await dosing.http.post(
        f"/v1/dosing-sessions/{uuid.uuid4()}/authorise", json={"patient_id": str(uuid.uuid4())}
    )
    assert response.status_code == 503, response.text
    assert "Retry-After" not in response.headers
    assert response.json()["code"] == "unavailable"
    assert "same id" in response.json()["detail"]
    back = await TcpProxy.start(stack.postgres.port, port)
    try:
        assert (await dosing.http.get("/v1/ops/parked")).status_code == 200
    finally:
        await back.close()


async def test_any_other_database_error_is_still_a_500(dosing: ServiceHarness) -> None:
    """Only a database that cannot be reached is a 503: a statement that fails on its own (here a
    constraint) is the service's bug, and says so."""

    async def broken() -> None:
        raise IntegrityError("INSERT INTO t", {}, Exception("duplicate key"))

    dosing.app.add_api_route("/test/broken", broken)
    transport = httpx.ASGITransport(app=dosing.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service.test") as client:
        response = await client.get("/test/broken")

    assert response.status_code == 500


async def test_a_refusal_that_cannot_be_recorded_is_a_503_not_a_403_or_a_500(
    stack: Stack, dosing: ServiceHarness, proxy: TcpProxy
) -> None:
    """A role refusal writes its audit row in the Forbidden handler: with the database gone it cannot,
    and an unrecorded refusal is not answered as one (nor as a bug): 503, as any read would get."""
    patient = dosing.client(patient_token(uuid.uuid4()))
    assert (await patient.get("/v1/ops/parked")).status_code == 403
    port = proxy.port
    await proxy.close()

    response = await patient.get("/v1/ops/parked")

    assert response.status_code == 503, response.text
    assert response.json()["code"] == "unavailable"
    back = await TcpProxy.start(stack.postgres.port, port)
    try:
        assert (await patient.get("/v1/ops/parked")).status_code == 403
    finally:
        await back.close()


async def test_connections_a_burst_made_are_kept_for_the_next_one_not_closed_and_made_again(stack: Stack) -> None:
    # With 10 kept and 10 as overflow, the 11th to 20th connection of a burst were closed as soon as
    # they were returned, and the next burst made them again (a backend, a SCRAM exchange each).
    engine = create_engine(await scratch_database(stack, "pool_kept_it", "dosing"))
    try:

        async def hold(release: asyncio.Event) -> None:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
                await release.wait()

        for _burst in range(2):
            release = asyncio.Event()
            holders = [asyncio.create_task(hold(release)) for _ in range(18)]
            while engine.pool.checkedout() < 18:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)
            release.set()
            await asyncio.gather(*holders)
            assert engine.pool.checkedin() == 18  # type: ignore[attr-defined]  # all returned, none closed
        conn = await asyncpg.connect(stack.postgres.dsn())
        try:
            opened = await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = 'pool_kept_it'")
        finally:
            await conn.close()
        assert opened == 18, "the second burst reused the first one's connections"
    finally:
        await engine.dispose()
