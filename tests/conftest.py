"""Fixtures: a real Kafka broker and PostgreSQL server for the whole test session.

The test stack lives in .local/test-stack on free ports, so it never collides
with a `make run` stack on the same machine. It is started fresh for each
session and stopped at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carecoord_devstack import scratch
from carecoord_devstack.paths import LOCAL
from carecoord_devstack.stack import Stack


def fresh_stack(state_dir: Path, *, fast_unsafe_db: bool = True, **extra_env: str) -> Stack:
    """A test stack on free ports in its own state folder, emptied first."""
    return scratch.fresh_stack(
        state_dir,
        fast_unsafe_db=fast_unsafe_db,
        service_env={
            # A killed consumer's partitions move to its successor in seconds.
            "CARECOORD_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "CARECOORD_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "CARECOORD_HANDLER_BACKOFF_INITIAL_S": "0.05",
            "CARECOORD_LOG_LEVEL": "DEBUG",
            "CARECOORD_TRACES_DIR": str(state_dir / "traces"),
            **extra_env,
        },
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    test_stack = fresh_stack(LOCAL / "test-stack")
    test_stack.up(lambda msg: print(f"[stack] {msg}"))
    try:
        yield test_stack
    finally:
        test_stack.down()


@pytest.fixture(scope="session")
def services(stack: Stack) -> Iterator[Stack]:
    """All six services, each its own OS process, against the test stack."""
    t0 = time.monotonic()
    stack.start_services()
    print(f"[stack] six services ready in {time.monotonic() - t0:.1f}s")
    try:
        yield stack
    finally:
        stack.stop_services()


async def eventually(
    check: Callable[[], Any], *, timeout: float = 20.0, interval: float = 0.1, what: str = "condition"
) -> Any:
    """Poll an (async or sync) check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last value: {last!r})")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Each suite's figures (hostile input, faults...), in the normal `make test` output (no -s needed)."""
    from tests.figures import SECTIONS

    for title, figures in SECTIONS.items():
        if figures:
            terminalreporter.section(title)
            for name, value in figures.items():
                terminalreporter.write_line(f"{name}: {value}")
