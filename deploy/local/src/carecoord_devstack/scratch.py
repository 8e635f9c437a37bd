"""Throwaway resources on a running stack, for tests and benchmarks."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import asyncpg

from carecoord_contracts.topics import SERVICES

from .stack import Stack


def free_ports(n: int) -> list[int]:
    """n TCP ports free on loopback right now (held together so they differ)."""
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def scratch_database(stack: Stack, name: str, owner: str) -> str:
    """A fresh, empty database owned by a service's role; returns its SQLAlchemy URL."""
    conn = await asyncpg.connect(stack.postgres.dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f'CREATE DATABASE {name} OWNER "{owner}"')
    finally:
        await conn.close()
    return stack.postgres.service_url(owner).rsplit("/", 1)[0] + f"/{name}"


def fresh_stack(state_dir: Path, *, fast_unsafe_db: bool, service_env: dict[str, str]) -> Stack:
    """A stack on free ports in its own state folder, emptied first.

    A broker or server left running by an interrupted run is stopped first; on a
    machine that never ran one there is nothing to stop, and that is no error.
    """
    previous = Stack(state_dir)
    previous.kafka.stop()
    previous.postgres.stop()
    previous.mailbox.stop()
    shutil.rmtree(state_dir, ignore_errors=True)
    kafka, controller, pg, smtp, *http = free_ports(4 + len(SERVICES))
    return Stack(
        state_dir,
        kafka_port=kafka,
        controller_port=controller,
        pg_port=pg,
        smtp_port=smtp,
        http_ports=dict(zip(SERVICES, http, strict=True)),
        fast_unsafe_db=fast_unsafe_db,
        service_env=service_env,
    )
