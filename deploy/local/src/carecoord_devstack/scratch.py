"""Throwaway resources on a running stack, for tests and benchmarks."""

from __future__ import annotations

import socket

import asyncpg

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
