"""Creates the registry's topics with their partition counts and settings.

Used by the local stack and, as the `carecoord-topics` command, by the
container stack's init job: one code path from the registry to the broker.
A topic that already exists gets the registry's settings too: a topic made
before a setting entered the registry (segment.ms) would otherwise keep the
broker's default for good, and the inbox retention floor, computed from the
registry, would be wrong for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from carecoord_contracts import ALL_TOPICS, Topic


def ensure_topics(
    bootstrap: str,
    topics: tuple[Topic, ...] = ALL_TOPICS,
    replication_factor: int = 1,
    security: dict[str, Any] | None = None,
) -> list[str]:
    """Create missing topics, grow partition counts, set the registry's settings; returns what was changed.
    ``security``: aiokafka's TLS/SASL options (carecoord_shared.kafka_security)."""
    return asyncio.run(_ensure(bootstrap, topics, replication_factor, security or {}))


async def _ensure(
    bootstrap: str, topics: tuple[Topic, ...], replication_factor: int, security: dict[str, Any]
) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    changes: list[str] = []
    try:
        existing = {
            d["topic"]: len(d["partitions"])
            for d in await admin.describe_topics([t.name for t in topics])
            if not d["error_code"]
        }
        missing = [t for t in topics if t.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor, topic_configs=t.topic_config()) for t in missing]
            )
            changes += [f"created {t.name} ({t.partitions} partitions)" for t in missing]
        grow = {
            t.name: NewPartitions(t.partitions)
            for t in topics
            if t.name in existing and existing[t.name] < t.partitions
        }
        if grow:
            await admin.create_partitions(grow)
            changes += [f"grew {name} to {p.total_count} partitions" for name, p in grow.items()]
        changes += await _align_configs(admin, [t for t in topics if t.name in existing])
    finally:
        await admin.close()
    return changes


# DescribeConfigs' config_source for a value set on the topic itself (v1+); v0 says is_default instead.
DYNAMIC_TOPIC_CONFIG = 1


async def _align_configs(admin: AIOKafkaAdminClient, topics: list[Topic]) -> list[str]:
    if not topics:
        return []
    described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t.name) for t in topics])
    overrides = {
        r["resource_name"]: _topic_overrides(r) for response in described for r in response.to_object()["resources"]
    }
    stale = [t for t in topics if any(overrides[t.name].get(k) != v for k, v in t.topic_config().items())]
    if not stale:
        return []
    # AlterConfigs replaces a topic's whole set of overrides: what was set on the topic
    # by hand is kept, the registry's keys win.
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, t.name, {**overrides[t.name], **t.topic_config()}) for t in stale
    ]
    for response in await admin.alter_configs(resources):
        for r in response.to_object()["resources"]:
            if r["error_code"]:
                raise for_code(r["error_code"])(f"altering {r['resource_name']}: {r['error_message']}")
    return [
        f"set {t.name} " + ", ".join(f"{k}={v}" for k, v in t.topic_config().items() if overrides[t.name].get(k) != v)
        for t in stale
    ]


def _topic_overrides(resource: dict[str, Any]) -> dict[str, str]:
    if resource["error_code"]:
        raise for_code(resource["error_code"])(f"describing {resource['resource_name']}: {resource['error_message']}")
    return {
        e["config_names"]: e["config_value"]
        for e in resource["config_entries"]
        if e.get("config_source") == DYNAMIC_TOPIC_CONFIG or e.get("is_default") is False
    }


def main() -> None:
    """`carecoord-topics`: create the registry's topics (KAFKA bootstrap from CARECOORD_KAFKA_BOOTSTRAP)."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="carecoord-topics", description=main.__doc__)
    parser.add_argument("--bootstrap", default=os.environ.get("CARECOORD_KAFKA_BOOTSTRAP", "127.0.0.1:19092"))
    parser.add_argument("--replication-factor", type=int, default=1)
    args = parser.parse_args()
    from ..config import ServiceSettings
    from ..kafka_security import aiokafka_security_options

    # The same CARECOORD_KAFKA_SECURITY_PROTOCOL / _SASL_* / _SSL_* settings as the services.
    security = aiokafka_security_options(ServiceSettings(service="topic-admin"))
    changes = ensure_topics(args.bootstrap, replication_factor=args.replication_factor, security=security)
    for change in changes or ["all topics already exist as the registry says"]:
        print(change, flush=True)
