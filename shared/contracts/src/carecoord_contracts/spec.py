"""Documents generated from the registry and the catalog, the single source:

- an AsyncAPI 3.0 document (the whole system, or the part one service sends
  and receives), with Kafka bindings: topic, partitions, key, consumer group;
- a JSON Schema per event version;
- a readable event catalog in Markdown.

The committed copies under docs/ are regenerated with `make contracts`; a
test fails when they are stale.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic.json_schema import models_json_schema

from . import HISTORY, UPCASTERS
from .deadletter import DeadLetter
from .envelope import EVENT_TYPE_PATTERN, SERVICE_PATTERN, Event
from .topics import ALL_TOPICS, BUSINESS_TOPICS, Topic

TITLE = "carecoord domain events"
KAFKA_BINDING = "0.5.0"
REF = "#/components/schemas/{model}"


def message_key(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _doc(model: type[Event]) -> str:
    return inspect.cleandoc(model.__doc__ or "").strip()


def event_schemas() -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, Any]]:
    """Payload schema per (type, version), with the shared definitions they reference."""
    keys = sorted(HISTORY)
    refs, top = models_json_schema([(HISTORY[k], "validation") for k in keys], ref_template=REF)
    defs = top.get("$defs", {})
    by_key = {}
    for key in keys:
        ref = refs[(HISTORY[key], "validation")]["$ref"].rsplit("/", 1)[-1]
        by_key[key] = defs[ref]
    return by_key, defs


def standalone_schema(event_type: str, version: int) -> dict[str, Any]:
    """One event version's payload as a self-contained JSON Schema (2020-12)."""
    model = HISTORY[(event_type, version)]
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://carecoord.example/schemas/{message_key(event_type, version)}.json",
        "title": f"{event_type} v{version}",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _envelope_schema(event_type: str, version: int, payload_ref: str) -> dict[str, Any]:
    uuid_ = {"type": "string", "format": "uuid"}
    return {
        "type": "object",
        "description": "The envelope every event travels in; `payload` is the event itself.",
        "required": [
            "event_id",
            "type",
            "version",
            "occurred_at",
            "producer",
            "patient_id",
            "correlation_id",
            "payload",
        ],
        "properties": {
            "event_id": {**uuid_, "description": "Unique per event; consumers deduplicate on it."},
            "type": {"type": "string", "const": event_type, "pattern": EVENT_TYPE_PATTERN},
            "version": {"type": "integer", "const": version},
            "occurred_at": {"type": "string", "format": "date-time", "description": "With a UTC offset."},
            "producer": {"type": "string", "pattern": SERVICE_PATTERN},
            "patient_id": {**uuid_, "description": "Pseudonymous patient id; also the Kafka key."},
            "correlation_id": {**uuid_, "description": "Shared by every event of one journey."},
            "causation_id": {"anyOf": [uuid_, {"type": "null"}], "description": "The event that caused this one."},
            "payload": {"$ref": payload_ref},
        },
    }


HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Routing and tracing metadata only: never payload content or PHI.",
    "properties": {
        "event-id": {"type": "string", "format": "uuid"},
        "event-type": {"type": "string"},
        "event-version": {"type": "string", "pattern": "^[0-9]+$"},
        "producer": {"type": "string"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
        "tracestate": {"type": "string"},
    },
}


def _topics_for(service: str | None) -> tuple[Topic, ...]:
    if service is None:
        return ALL_TOPICS
    return tuple(t for t in ALL_TOPICS if t.producer == service or service in t.consumers)


def asyncapi(service: str | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the system, or of what one service sends and receives."""
    _payloads, defs = event_schemas()
    topics = _topics_for(service)
    schemas: dict[str, Any] = {"Headers": HEADERS_SCHEMA, **defs}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    for topic in topics:
        channel_messages: dict[str, Any] = {}
        if topic in BUSINESS_TOPICS:
            for event_type in topic.events:
                for (etype, version), _ in sorted(HISTORY.items()):
                    if etype != event_type:
                        continue
                    key = message_key(etype, version)
                    model = HISTORY[(etype, version)]
                    payload_name = model.__name__
                    envelope_name = f"Envelope_{key.replace('.', '_')}"
                    schemas[envelope_name] = _envelope_schema(etype, version, REF.format(model=payload_name))
                    note = ""
                    if (etype, version) in UPCASTERS:
                        note = f"\n\nSuperseded: consumers upcast v{version} to v{version + 1}."
                    messages[key] = {
                        "name": etype,
                        "title": f"{etype} v{version}",
                        "summary": (_doc(model).splitlines() or [f"{etype} v{version}"])[0],
                        "description": (_doc(model) + note).strip() or None,
                        "contentType": "application/json",
                        "headers": {"$ref": "#/components/schemas/Headers"},
                        "payload": {"$ref": REF.format(model=envelope_name)},
                        "bindings": {"kafka": _key_binding()},
                    }
                    messages[key] = {k: v for k, v in messages[key].items() if v is not None}
                    channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        else:
            messages["DeadLetter"] = _dead_letter_message()
            schemas["DeadLetter"] = _dead_letter_schema()
            channel_messages["DeadLetter"] = {"$ref": "#/components/messages/DeadLetter"}
        channels[topic.name] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Producer: {topic.producer}. "
            f"Consumers: {', '.join(topic.consumers) or 'none yet'}. Key: {topic.key}.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": {"retention.ms": topic.retention_ms},
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        }
        channel_ref = {"$ref": f"#/channels/{topic.name}"}
        message_refs = [{"$ref": f"#/channels/{topic.name}/messages/{k}"} for k in channel_messages]
        if service is None or topic.producer == service:
            operations[f"{topic.producer}.send.{topic.name}"] = {
                "action": "send",
                "title": f"{topic.producer} publishes to {topic.name}",
                "channel": channel_ref,
                "messages": message_refs,
            }
        for consumer in topic.consumers:
            if service is None or consumer == service:
                operations[f"{consumer}.receive.{topic.name}"] = {
                    "action": "receive",
                    "title": f"{consumer} consumes {topic.name}",
                    "channel": channel_ref,
                    "messages": message_refs,
                    "bindings": {
                        "kafka": {
                            "groupId": {"type": "string", "enum": [f"carecoord.{consumer}"]},
                            "bindingVersion": KAFKA_BINDING,
                        }
                    },
                }

    title = TITLE if service is None else f"carecoord {service}: events sent and received"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": (
                "Kafka topics are carecoord's public API. Every message is a JSON envelope keyed by the "
                "pseudonymous patient id, so one patient's events keep their order. Adding an optional "
                "field is compatible; any other change is a new version, and consumers upcast older "
                "versions. Consumers ignore unknown fields and skip unknown event types."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The broker `make run` starts.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _key_binding() -> dict[str, Any]:
    return {
        "key": {"type": "string", "format": "uuid", "description": "pseudonymous patient id"},
        "bindingVersion": KAFKA_BINDING,
    }


def _dead_letter_schema() -> dict[str, Any]:
    schema = DeadLetter.model_json_schema(ref_template=REF)
    return {k: v for k, v in schema.items() if k != "$defs"}


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a service could not process, with the reason and where it was read.",
        "contentType": "application/json",
        "payload": {"$ref": "#/components/schemas/DeadLetter"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "the original message's key"},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
