"""Creates the registry's topics with their partition counts and settings.

Used by the local stack and, as the `carecoord-topics` command, by the
container stack's init job: one code path from the registry to the broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from ..contracts import ALL_TOPICS, Topic


def ensure_topics(
    bootstrap: str, topics: tuple[Topic, ...] = ALL_TOPICS, replication_factor: int = 1, security: dict[str, Any] | None = None
) -> list[str]:
    """Create missing topics and grow partition counts; returns what was changed.
    ``security``: aiokafka's TLS/SASL options (carecoord_shared.kafka_security)."""
    return asyncio.run(_ensure(bootstrap, topics, replication_factor, security or {}))


async def _ensure(bootstrap: str, topics: tuple[Topic, ...], replication_factor: int, security: dict[str, Any]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    changes: list[str] = []
    try:
        existing = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics([t.name for t in topics]) if not d["error_code"]}
        missing = [t for t in topics if t.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor, topic_configs=t.topic_config()) for t in missing]
            )
            changes += [f"created {t.name} ({t.partitions} partitions)" for t in missing]
        grow = {t.name: NewPartitions(t.partitions) for t in topics if t.name in existing and existing[t.name] < t.partitions}
        if grow:
            await admin.create_partitions(grow)
            changes += [f"grew {name} to {p.total_count} partitions" for name, p in grow.items()]
    finally:
        await admin.close()
    return changes


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
