"""Creates the registry's topics with their partition counts and settings."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from carecoord_shared.contracts import ALL_TOPICS, Topic


def ensure_topics(bootstrap: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create missing topics and grow partition counts; returns what was changed."""
    return asyncio.run(_ensure(bootstrap, topics))


async def _ensure(bootstrap: str, topics: tuple[Topic, ...]) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    changes: list[str] = []
    try:
        existing = {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics([t.name for t in topics]) if not d["error_code"]}
        missing = [t for t in topics if t.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(t.name, t.partitions, 1, topic_configs=t.topic_config()) for t in missing]
            )
            changes += [f"created {t.name} ({t.partitions} partitions)" for t in missing]
        grow = {t.name: NewPartitions(t.partitions) for t in topics if t.name in existing and existing[t.name] < t.partitions}
        if grow:
            await admin.create_partitions(grow)
            changes += [f"grew {name} to {p.total_count} partitions" for name, p in grow.items()]
    finally:
        await admin.close()
    return changes
