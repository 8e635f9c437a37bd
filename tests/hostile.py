"""A deterministic generator of hostile payloads, derived from JSON schemas.

Each case breaks exactly one thing in an otherwise well-formed instance (a
field missing, of the wrong type, NaN, a negative or huge dose, CR/LF or SQL
in a string, an unknown version...) or breaks the whole body (not JSON, deep
nesting, oversized). The same generator feeds the Kafka input topics (from the
event contracts) and the HTTP endpoints (from each service's OpenAPI).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.figures import section

NAN = "__NaN__"  # replaced by a bare NaN token after json.dumps (JSON has no NaN)
CRLF = "ok\r\nX-Injected: 1\r\n\r\n<script>"
SQL = "'; DROP TABLE patients; --"
HUGE_STRING_CHARS = 100_000
OVERSIZED_BYTES = 2 * 1024 * 1024
DEEP = 10_000


@dataclass(frozen=True)
class Case:
    label: str
    body: bytes


def encode(value: Any) -> bytes:
    return json.dumps(value).replace(f'"{NAN}"', "NaN").encode()


def resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _non_null(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema, defs)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [resolve(s, defs) for s in schema[key] if resolve(s, defs).get("type") != "null"]
            return _non_null(options[0], defs) if options else {"type": "null"}
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _non_null(schema["allOf"][0], defs)
    return schema


def example(schema: dict[str, Any], defs: dict[str, Any], name: str = "") -> Any:
    """A plausible valid instance: required fields only, the lower bounds of ranges."""
    schema = _non_null(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: example(v, defs, k) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        return [example(schema.get("items", {}), defs, name) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1))
    if kind == "number":
        return schema.get("minimum", 1.0)
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return "2026-01-01T10:00:00Z"
    if fmt == "date":
        return "2026-01-01"
    return PATTERN_EXAMPLES.get(schema.get("pattern", ""), "x" * max(schema.get("minLength", 1), 1))


# Valid strings for the patterns the contracts use (add one when a new pattern appears).
PATTERN_EXAMPLES = {
    "^[A-Z]{2}$": "CA",
    "^[A-Z0-9]+$": "A1",
    "^[A-Z0-9]{2}$": "25",
    "^[A-Z0-9]{1,5}$": "A1",
    "^\\d{2}$": "11",
    "^(CO|PR|OA|PI|CR)$": "CO",
}


def _wrong_types(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return [("string_for_number", "abc"), ("object_for_number", {"a": 1}), ("bool_for_number", [True])]
    if kind == "boolean":
        return [("string_for_bool", "maybe"), ("object_for_bool", {})]
    if kind == "array":
        return [("string_for_array", "abc"), ("object_for_array", {"a": 1})]
    if kind == "object":
        return [("string_for_object", "abc"), ("array_for_object", [1, 2])]
    return [("number_for_string", 12345), ("array_for_string", ["a"]), ("object_for_string", {"a": "b"})]


def _value_attacks(name: str, schema: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = schema.get("type")
    attacks: list[tuple[str, Any]] = []
    if kind in ("integer", "number"):
        attacks += [("nan", NAN), ("huge", 10**30)]
        if kind == "integer":
            attacks.append(("fraction", 1.5))
        if "minimum" in schema or "exclusiveMinimum" in schema or _is_dose(name):
            attacks.append(("negative", -1))
        if "maximum" in schema or _is_dose(name):
            attacks.append(("above_maximum", schema.get("maximum", 10**6) + 10**6))
    elif kind == "string" or "format" in schema or "enum" in schema or "pattern" in schema:
        fmt = schema.get("format")
        if fmt == "uuid":
            attacks += [("uuid_sql", SQL), ("uuid_crlf", CRLF), ("uuid_truncated", "1234-abcd")]
        elif fmt in ("date-time", "date"):
            attacks += [("date_garbage", "31/31/2026 25:61"), ("date_year_0", "0000-00-00T00:00:00Z")]
            if fmt == "date-time":
                attacks.append(("date_naive", "2026-01-01T10:00:00"))
        else:
            # Free text (no enum, no pattern: a patient's note) may hold any line
            # breaks and quotes by design; it is stored through bound parameters.
            if "enum" in schema or "pattern" in schema:
                attacks += [("string_sql", SQL), ("string_crlf", CRLF)]
            attacks.append(("string_huge", "A" * HUGE_STRING_CHARS))
    return attacks


def _is_dose(name: str) -> bool:
    return "dose" in name or name.endswith("_mg")


def mutations(
    schema: dict[str, Any], defs: dict[str, Any], base: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any] | Any]]:
    """One defect per case, on each top-level field of ``base``'s schema (and one level into objects)."""
    schema = _non_null(schema, defs)
    required = set(schema.get("required", []))
    for name, raw_field in schema.get("properties", {}).items():
        nullable = any(resolve(s, defs).get("type") == "null" for s in resolve(raw_field, defs).get("anyOf", []))
        field = _non_null(raw_field, defs)
        if name in required:
            yield f"missing:{name}", {k: v for k, v in base.items() if k != name}
            if not nullable:
                yield f"null:{name}", {**base, name: None}
        for label, value in _wrong_types(field) + _value_attacks(name, field):
            yield f"{label}:{name}", {**base, name: value}
        if field.get("type") == "object" and name in base and isinstance(base[name], dict):
            for label, inner in mutations(field, defs, base[name]):
                yield f"{label}@{name}", {**base, name: inner}
        if field.get("type") == "array":
            item = _non_null(field.get("items", {}), defs)
            if item.get("type") == "object":
                good = example(item, defs)
                for label, inner in list(mutations(item, defs, good))[:6]:
                    yield f"{label}@{name}[]", {**base, name: [inner]}


def whole_body_cases(oversized: int = OVERSIZED_BYTES) -> list[Case]:
    """Bodies bad as a whole, whatever the schema (Kafka's own limit caps ``oversized`` there)."""
    return [
        Case("not_json", b"\x00\xff{not json"),
        Case("empty", b""),
        Case("json_null", b"null"),
        Case("json_array", b"[1, 2, 3]"),
        Case("json_string", b'"hello"'),
        Case("truncated", b'{"a": '),
        Case("deep_arrays", b"[" * DEEP + b"]" * DEEP),
        Case("deep_objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
        Case("oversized", b'{"padding": "' + b"A" * oversized + b'"}'),
    ]


def body_cases(schema: dict[str, Any], defs: dict[str, Any]) -> list[Case]:
    base = example(schema, defs)
    cases = whole_body_cases() + [Case("empty_object", b"{}")] if schema.get("required") else whole_body_cases()
    cases += [Case(label, encode(bad)) for label, bad in mutations(schema, defs, base)]
    return cases


# Filled by the hostile-input e2e test; tests/conftest.py prints it in the terminal summary.
FIGURES: dict[str, Any] = section("hostile input")
