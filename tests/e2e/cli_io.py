"""Run the installed `carecoord` command against a stack, as an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

from carecoord_contracts.topics import SERVICES
from carecoord_devstack.paths import REPO_ROOT
from carecoord_devstack.stack import Stack

CARECOORD = str(REPO_ROOT / ".venv" / "bin" / "carecoord")


def environment(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARECOORD_")}
    env["CARECOORD_KAFKA_BOOTSTRAP"] = stack.kafka.bootstrap
    env.update({f"CARECOORD_{s.upper()}_URL": stack.services[s].url for s in SERVICES})
    env["COLUMNS"] = "250"  # rich tables wide enough that ids are not folded
    return env


async def carecoord(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [CARECOORD, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


async def carecoord_json(env: dict[str, str], *args: str) -> Any:
    done = await carecoord(env, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
