"""A patient's journey: their events on every business topic, in the order they happened.

Only envelope metadata and coded payload fields (enumerations, numbers,
yes/no) are shown: no identifiers beyond the pseudonymous patient id, and never
free text, even if a producer someday put some in an event.
"""

from __future__ import annotations

import enum
import json
import types
import typing
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carecoord_contracts import CATALOG
from carecoord_contracts.topics import BUSINESS_TOPICS

from .config import TRACE_URL
from .kafka import Broker, header


@dataclass(frozen=True)
class Step:
    occurred_at: datetime
    event_type: str
    version: int
    producer: str
    topic: str
    event_id: str
    trace_id: str | None
    coded: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.isoformat(),
            "event_type": self.event_type,
            "version": self.version,
            "producer": self.producer,
            "topic": self.topic,
            "event_id": self.event_id,
            "trace_id": self.trace_id,
            "trace_url": trace_url(self.trace_id),
            "coded": self.coded,
        }


async def journey(broker: Broker, patient_id: uuid.UUID) -> list[Step]:
    key = str(patient_id).encode()
    steps = []
    for record in await broker.records(t.name for t in BUSINESS_TOPICS):
        if record.key != key:
            continue
        try:
            envelope = json.loads(record.value)
            if envelope.get("patient_id") != str(patient_id):
                continue
            steps.append(
                Step(
                    occurred_at=datetime.fromisoformat(envelope["occurred_at"]),
                    event_type=str(envelope["type"]),
                    version=int(envelope["version"]),
                    producer=str(envelope["producer"]),
                    topic=record.topic,
                    event_id=str(envelope["event_id"]),
                    trace_id=trace_id(header(record, "traceparent")),
                    coded=coded_fields(str(envelope["type"]), envelope.get("payload") or {}),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # not an envelope: the consumers dead-letter it; it is no step of the journey
    return sorted(steps, key=lambda s: (s.occurred_at, s.event_id))


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C traceparent header (version-traceid-spanid-flags)."""
    parts = (traceparent or "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


def trace_url(trace: str | None) -> str | None:
    return TRACE_URL.format(trace_id=trace) if trace else None


def coded_fields(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload fields whose declared type is a code: an enumeration, a number, a yes/no,
    or a string the contract restricts to a pattern (snake_case codes, state codes)."""
    model = CATALOG.get(event_type)
    if model is None:
        return {}
    return {
        name: payload[name]
        for name, info in model.model_fields.items()
        if name in payload and _is_coded(info.annotation, info.metadata) and _is_plain(payload[name])
    }


def _is_coded(annotation: Any, metadata: list[Any]) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return _is_coded(inner, [m for e in extra for m in (getattr(e, "metadata", None) or [e])])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(args) and all(_is_coded(a, metadata) for a in args)
    if origin in (list, tuple, frozenset, set):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return bool(args) and all(_is_coded(a, []) for a in args)
    if annotation is str:
        return any(getattr(m, "pattern", None) for m in metadata)
    return isinstance(annotation, type) and (issubclass(annotation, enum.Enum) or annotation in (bool, int))


def _is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return isinstance(value, (str, int, bool))
