"""Minimum necessary: PHI never leaves the service that owns it through logs,
spans or metric labels.

Two nets, because a single one has holes: fields whose *names* say PHI are
redacted wherever they appear (a structlog processor for logs, an exporter
wrapper for spans), and exception texts — which can quote a row, a request or
a parameter — are cut down to the exception's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from opentelemetry.util.types import Attributes, AttributeValue
from structlog.typing import EventDict

REDACTED = "[redacted]"

# Names (or parts of names) of fields that hold PHI or free text in this system.
PHI_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "full_name",
        "given_name",
        "family_name",
        "patient_name",
        "date_of_birth",
        "dob",
        "birth_date",
        # FHIR Patient's element names (name.given, name.family, birthDate, telecom), compared lower-cased.
        "given",
        "family",
        "birthdate",
        "telecom",
        "email",
        "phone",
        "home_address",
        "street",
        "line1",
        "line2",
        "postal_code",
        "zip",
        "member_id",
        "subscriber_id",
        "note",
        "notes",
        "resolution_note",
        "free_text",
        "comment",
        "reason_text",
        "override_reason",
        "ssn",
    }
)


@lru_cache(maxsize=4096)  # called for every attribute of every span: the names repeat
def is_phi_key(key: str) -> bool:
    """By the last dotted segment, so semantic-convention keys (server.address,
    messaging.destination.name) are never mistaken for PHI."""
    return key.lower().rsplit(".", 1)[-1] in PHI_KEYS


# Values that hold no fields: returned as they are without the (slow, ABC) Mapping check. Most log
# fields are one of these (ids, types, counts), and this runs for every field of every log line.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def scrub(value: object) -> object:
    """A copy of a (nested) mapping or list with PHI-named fields redacted."""
    if type(value) in _LEAVES:
        return value
    if isinstance(value, Mapping):
        return {k: REDACTED if is_phi_key(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scrub(v) for v in value)
    return value


def exception_type_only(text: str) -> str:
    """'ValueError: Key (email)=(x@y) exists' -> 'ValueError' (the text may quote data)."""
    return text.split(":", 1)[0].strip() if text else text


def structlog_processor(_logger: object, _name: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key == "event":
            continue
        if is_phi_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = scrub(event_dict[key])
    return event_dict


def needs_scrubbing(attributes: Attributes) -> bool:
    """Whether :func:`scrub_attributes` would change anything (most spans: no, and then they are passed on as they are)."""
    return any(is_phi_key(key) or key.startswith("exception.") for key in attributes or ())


def scrub_attributes(attributes: Attributes) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if is_phi_key(key) or key == "exception.message":
            out[key] = REDACTED
        elif key == "exception.stacktrace" and isinstance(value, str):
            lines = value.rstrip().splitlines()
            out[key] = "\n".join([*lines[:-1], exception_type_only(lines[-1])]) if lines else value
        else:
            out[key] = value
    return out
