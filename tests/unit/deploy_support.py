"""Loads deploy/'s scripts (they are files, not packages) and renders what they describe."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from carecoord_devstack.paths import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


validate = _load(DEPLOY / "validate" / "validate.py")
generate = _load(DEPLOY / "k8s" / "generate.py")


@functools.cache
def rendered(kustomization: str) -> tuple[dict[str, Any], ...]:
    return tuple(validate.render(DEPLOY / "k8s" / kustomization))


def of_kind(resources: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def workspace_services() -> list[str]:
    return sorted(p.name for p in (REPO_ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
