"""``python -m bench.worker BOOTSTRAP DATABASE_URL TOPIC PARTITIONS GROUP``: one instance of the A4 hop as its own process.

The scaling runs start one or two of these in one consumer group, like
instances of a service. It prints ``assigned <n>`` whenever its share of the
topic's partitions changes, so the driver can wait for the group to settle,
and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from carecoord_contracts import Topic

from .arms import Context, broker
from .hop import build_hop
from .infra import LOOPS, use_loop

ASSIGNMENT_POLL_S = 0.2


async def main(bootstrap: str, database_url: str, topic: str, partitions: int, group_id: str) -> None:
    ctx = Context(bootstrap, database_url)
    ctx.telemetry()
    engine = await ctx.engine()
    source = Topic(
        name=topic, producer="patient-app", consumers=(), events=("SideEffectReportSubmitted",), partitions=partitions
    )
    hop = build_hop(broker(ctx), engine, (source,), group_id, bootstrap=bootstrap)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await hop.start()
    try:
        last = -1
        while not stop.is_set():
            assigned = len(hop.kafka_consumer.assignment()) if hop.kafka_consumer is not None else 0
            if assigned != last:
                print(f"assigned {assigned}", flush=True)
                last = assigned
            try:
                await asyncio.wait_for(stop.wait(), ASSIGNMENT_POLL_S)
            except TimeoutError:
                pass
    finally:
        await hop.stop()
        await ctx.close()


if __name__ == "__main__":
    bootstrap, url, topic, partitions, group_id = sys.argv[1:6]
    use_loop(os.environ.get("CARECOORD_EVENT_LOOP", LOOPS[0]))
    asyncio.run(main(bootstrap, url, topic, int(partitions), group_id))
