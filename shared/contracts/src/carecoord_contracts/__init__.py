"""Event contracts: every event that crosses a service boundary, by (type, version).

``CATALOG`` maps each type to its current version's model; ``HISTORY`` keeps
every released version (for documentation and the compatibility check).
Consumers resolve an envelope here: an older version is upcast to the current
one, step by step, by the functions in ``UPCASTERS``; an unknown type is not in
the catalog, so a consumer skips it without failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import billing, dosing, intake, patient_app, safety, scheduling
from .envelope import Envelope, Event
from .topics import ALL_TOPICS, BUSINESS_TOPICS, Topic, topic_for_event, topics_consumed_by

EVENT_MODULES = (patient_app, intake, scheduling, dosing, safety, billing)

HISTORY: dict[tuple[str, int], type[Event]] = {
    (obj.event_type, obj.version): obj
    for module in EVENT_MODULES
    for obj in vars(module).values()
    if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event and obj.__module__ == module.__name__
}

CATALOG: dict[str, type[Event]] = {}
for (_type, _version), _model in sorted(HISTORY.items()):
    CATALOG[_type] = _model  # sorted: the highest version wins

# (type, from_version) -> function turning that version's payload into the next version's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("SideEffectReportSubmitted", 1): patient_app.side_effect_report_v1_to_v2,
}


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
    "HISTORY",
    "Envelope",
    "Event",
    "Topic",
    "UnsupportedVersion",
    "topic_for_event",
    "topics_consumed_by",
    "upcast",
]
