"""The compatibility check between a released contract snapshot and the code.

A release snapshot holds the JSON Schema of the envelope and of every event
version. Against it, the current contracts may add optional fields and add new
versions; they may not remove a released version, remove a field, change a
field's type or allowed values, or make a field required. Those changes need a
new version (and an upcaster from the old one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import HISTORY, UPCASTERS
from .envelope import Envelope
from .spec import message_key, standalone_schema


def snapshot() -> dict[str, Any]:
    return {
        "envelope": Envelope.model_json_schema(ref_template="#/$defs/{model}"),
        "events": {message_key(t, v): standalone_schema(t, v) for (t, v) in sorted(HISTORY)},
    }


def latest_release(releases_dir: Path) -> tuple[str, dict[str, Any]] | None:
    files = sorted(releases_dir.glob("*.json"), key=lambda p: tuple(int(x) for x in p.stem.split(".")))
    if not files:
        return None
    return files[-1].stem, json.loads(files[-1].read_text())


def breaking_changes(released: dict[str, Any], current: dict[str, Any]) -> list[str]:
    problems = _compare("Envelope", released["envelope"], current["envelope"])
    for key, old in released["events"].items():
        new = current["events"].get(key)
        if new is None:
            problems.append(f"{key}: a released version was removed; consumers may still receive it")
            continue
        problems += _compare(key, old, new)
    return problems


def missing_upcasters() -> list[str]:
    """Every superseded version needs a step up to the next one."""
    problems = []
    for event_type, version in sorted(HISTORY):
        current = max(v for (t, v) in HISTORY if t == event_type)
        if version < current and (event_type, version) not in UPCASTERS:
            problems.append(f"{message_key(event_type, version)}: superseded but no upcaster to v{version + 1}")
    return problems


def _compare(name: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field, old_field in old_props.items():
        if field not in new_props:
            problems.append(f"{name}.{field}: removed")
            continue
        before, after = _shape(old, old_field), _shape(new, new_props[field])
        if before != after:
            problems.append(f"{name}.{field}: changed from {_show(before)} to {_show(after)}")
    for field in sorted(set(new.get("required", [])) - set(old.get("required", []))):
        problems.append(f"{name}.{field}: " + ("now required" if field in old_props else "added as required"))
    return problems


def _shape(root: dict[str, Any], schema: dict[str, Any]) -> Any:
    """What a consumer relies on: types, formats, allowed values, structure; not docs or bounds."""
    if "$ref" in schema:
        target = root.get("$defs", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
        return _shape(root, target)
    if "anyOf" in schema:
        return ("anyOf", tuple(sorted((_shape(root, s) for s in schema["anyOf"]), key=repr)))
    if "enum" in schema:
        return ("enum", tuple(sorted(map(str, schema["enum"]))))
    if "const" in schema:
        return ("const", schema["const"])
    kind = schema.get("type")
    if kind == "array":
        return ("array", _shape(root, schema.get("items", {})))
    if kind == "object" and "properties" in schema:
        return ("object", tuple(sorted((k, _shape(root, v)) for k, v in schema["properties"].items())))
    return (kind, schema.get("format"))


def _show(shape: Any) -> str:
    return json.dumps(shape, default=str)
