"""Event contracts: every event that crosses a service boundary, by (type, version).

Consumers resolve an envelope's type and version here. An older version is
upcast to the current one by the upcasters registered beside it; an unknown
type resolves to None so that consumers can skip it without failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import dosing, intake, patient_app, safety
from .envelope import Envelope, Event
from .topics import ALL_TOPICS, BUSINESS_TOPICS, Topic, topic_for_event, topics_consumed_by

EVENT_MODULES = (patient_app, intake, safety, dosing)

CATALOG: dict[str, type[Event]] = {
    obj.event_type: obj
    for module in EVENT_MODULES
    for obj in vars(module).values()
    if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
}

# (type, from_version) -> function turning that version's payload into the next version's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnsupportedVersion(ValueError):
    pass


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring a payload of an older version up to the catalog's current version."""
    current = CATALOG[event_type].version
    if version > current:
        raise UnsupportedVersion(f"{event_type} v{version} is newer than the supported v{current}")
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnsupportedVersion(f"no upcaster for {event_type} v{version}")
        payload = step(payload)
        version += 1
    return payload


__all__ = [
    "ALL_TOPICS",
    "BUSINESS_TOPICS",
    "CATALOG",
    "Envelope",
    "Event",
    "Topic",
    "UnsupportedVersion",
    "topic_for_event",
    "topics_consumed_by",
    "upcast",
]
