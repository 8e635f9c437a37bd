"""The published contracts install alone, and the operator CLI without the service runtime.

Each test makes an empty virtual environment, installs one package from its
directory (third-party dependencies from PyPI), and looks at what came with it:
another team's consumer gets pydantic and nothing else, and `carecoord` (the
operator CLI) gets no web framework, database driver or telemetry exporter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from carecoord_devstack.paths import REPO_ROOT

# What the service runtime brings; none of it may come with the contracts or the CLI.
RUNTIME = {"carecoord-shared", "fastapi", "starlette", "sqlalchemy", "asyncpg", "alembic", "uvicorn", "faststream"}
EXPORTERS_PREFIX = "opentelemetry"

# Run inside the fresh environment: the distributions installed there, and what pydantic requires (transitively).
INSTALLED = """
import json, re
from importlib import metadata

def name(n):
    return re.sub(r"[-_.]+", "-", n).lower()

def closure(root):
    seen, todo = set(), [root]
    while todo:
        dist = name(todo.pop())
        if dist in seen:
            continue
        seen.add(dist)
        for req in metadata.requires(dist) or ():
            if "extra ==" not in req:
                todo.append(re.match(r"[A-Za-z0-9_.-]+", req).group(0))
    return sorted(seen)

print(json.dumps({"installed": sorted(name(d.metadata["Name"]) for d in metadata.distributions()),
                  "pydantic": closure("pydantic")}))
"""


def _uv() -> str:
    local = REPO_ROOT / ".local" / "tools" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is needed to build the empty environment (make setup installs it under .local/tools/bin)")
    return found


def _fresh_venv(tmp_path: Path, *packages: Path) -> Path:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env)
    python = venv / "bin" / "python"
    subprocess.run(
        [_uv(), "pip", "install", "--quiet", "--python", str(python), *map(str, packages)],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    return python


def _installed(python: Path) -> dict[str, list[str]]:
    out = subprocess.run([str(python), "-c", INSTALLED], check=True, capture_output=True, text=True).stdout
    result: dict[str, list[str]] = json.loads(out)
    return result


def test_the_contracts_install_with_pydantic_alone_and_regenerate_the_committed_documents(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path, REPO_ROOT / "shared" / "contracts")
    found = _installed(python)

    assert "pydantic" in found["pydantic"]
    assert set(found["installed"]) == {"carecoord-contracts", *found["pydantic"]}, (
        "carecoord-contracts must bring pydantic and pydantic's own dependencies, nothing else"
    )
    assert not RUNTIME & set(found["installed"])

    # Importing and building everything published pulls in nothing of the runtime either.
    built = subprocess.run(
        [
            str(python),
            "-c",
            "import json, sys\n"
            "from carecoord_contracts import CATALOG\n"
            "from carecoord_contracts.catalog import markdown\n"
            "from carecoord_contracts.spec import asyncapi\n"
            "doc = asyncapi()\n"
            "print(json.dumps({'events': len(CATALOG), 'channels': len(doc['channels']), 'catalog': len(markdown()),\n"
            "  'modules': sorted({m.split('.')[0] for m in sys.modules})}))",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(built.stdout)
    assert result["events"] > 0 and result["channels"] > 0 and result["catalog"] > 0
    assert not {"fastapi", "sqlalchemy", "aiokafka", "uvicorn", "opentelemetry", "carecoord_shared"} & set(
        result["modules"]
    )

    # The installed script regenerates docs/ exactly as committed, and finds no breaking change.
    script = python.parent / "carecoord-contracts"
    docs = REPO_ROOT / "docs"
    check = subprocess.run(
        [str(script), "--docs", str(docs), "generate", "--check"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    compat = subprocess.run(
        [str(script), "--docs", str(docs), "compat"], check=False, capture_output=True, text=True, cwd=tmp_path
    )
    assert compat.returncode == 0, compat.stdout + compat.stderr
    assert "0 breaking change(s)" in compat.stdout


def test_the_cli_installs_without_the_service_runtime(tmp_path: Path) -> None:
    python = _fresh_venv(
        tmp_path, REPO_ROOT / "shared" / "contracts", REPO_ROOT / "shared" / "records", REPO_ROOT / "cli"
    )
    installed = set(_installed(python)["installed"])

    assert {"carecoord-cli", "carecoord-contracts", "carecoord-records"} <= installed
    assert not RUNTIME & installed
    assert not {d for d in installed if d.startswith(EXPORTERS_PREFIX)}

    # Every command's module imports, and a development token is minted with the published claim shape.
    run = subprocess.run(
        [
            str(python),
            "-c",
            "import jwt\n"
            "from carecoord_cli import config, demo, dlq, journey, kafka, main, stalls, status\n"
            "from carecoord_contracts.tokens import DEVELOPMENT_JWT_SECRET\n"
            "claims = jwt.decode(config.operator_token(), DEVELOPMENT_JWT_SECRET, algorithms=['HS256'], audience='carecoord')\n"
            "print(claims['role'])",
        ],
        check=False,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in {"CARECOORD_TOKEN", "CARECOORD_AUTH_JWT_SECRET"}},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "operator"
    help_text = subprocess.run(
        [str(python.parent / "carecoord"), "--help"], check=False, capture_output=True, text=True
    )
    assert help_text.returncode == 0, help_text.stderr
