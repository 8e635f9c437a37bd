"""`carecoord status`: is every service ready, caught up, not stalled, and is anything dead-lettered?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from carecoord_contracts.topics import SERVICES, dead_letter_topic, topics_consumed_by

from .config import Target
from .errors import StackUnavailable
from .kafka import Broker
from .stalls import DEFAULT_MAX_OUTBOX_AGE_S, Problem, problems, undecodable_skipped


@dataclass
class ServiceStatus:
    service: str
    url: str
    ready: bool = False
    reachable: bool = False
    checks: dict[str, Any] = field(default_factory=dict)
    lag: dict[str, int] | None = None  # "topic[partition]" -> messages not yet processed
    dead_letters: int | None = None
    # What the readiness body says is stuck while the service stays ready (carecoord_cli.stalls).
    problems: list[Problem] = field(default_factory=list)
    undecodable_skipped: int = 0

    @property
    def total_lag(self) -> int | None:
        return None if self.lag is None else sum(self.lag.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "url": self.url,
            "reachable": self.reachable,
            "ready": self.ready,
            "checks": self.checks,
            "consumer_group": f"carecoord.{self.service}",
            "lag": self.lag,
            "total_lag": self.total_lag,
            "dead_letters": self.dead_letters,
            "problems": [p.as_json() for p in self.problems],
            "undecodable_skipped": self.undecodable_skipped,
        }


@dataclass
class Report:
    services: list[ServiceStatus]
    kafka_reachable: bool

    @property
    def healthy(self) -> bool:
        # Ready is not enough: a stalled partition or a parked key leaves a service ready.
        return self.kafka_reachable and all(s.ready and not s.problems for s in self.services)


async def collect(target: Target, *, max_outbox_age_s: float = DEFAULT_MAX_OUTBOX_AGE_S) -> Report:
    statuses = [ServiceStatus(service, target.urls[service]) for service in SERVICES]
    async with httpx.AsyncClient(timeout=5) as http:
        await asyncio.gather(*(_health(http, s, max_outbox_age_s) for s in statuses))
    try:
        async with Broker(target.kafka_bootstrap) as broker:
            for status in statuses:
                await _kafka_view(broker, status)
        kafka_reachable = True
    except StackUnavailable:
        if not any(s.reachable for s in statuses):
            raise StackUnavailable(
                f"Nothing answers: neither Kafka at {target.kafka_bootstrap} nor any service ({target.urls['intake']}, …)."
            ) from None
        kafka_reachable = False
    return Report(statuses, kafka_reachable)


async def _health(http: httpx.AsyncClient, status: ServiceStatus, max_outbox_age_s: float) -> None:
    try:
        response = await http.get(f"{status.url}/health/ready")
    except httpx.TransportError:
        return
    status.reachable = True
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # Something else answers there (a proxy's error page, another program): this one
        # service is unhealthy, and the others are still reported.
        what = f"{status.url} answered /health/ready with something that is not carecoord's health"
        status.problems = [Problem(status.service, what, "check that the URL points at the service (--service-url)")]
        return
    checks = body.get("checks")
    status.checks = checks if isinstance(checks, dict) else {}
    status.ready = response.status_code == 200 and body.get("status") == "ok"
    status.problems = problems(status.service, body, max_outbox_age_s=max_outbox_age_s)
    status.undecodable_skipped = undecodable_skipped(body)


async def _kafka_view(broker: Broker, status: ServiceStatus) -> None:
    group = f"carecoord.{status.service}"
    committed = await broker.committed(group)
    offsets = await broker.offsets(t.name for t in topics_consumed_by(status.service))
    # A partition the group never committed on: everything still there is unread.
    status.lag = {
        f"{tp.topic}[{tp.partition}]": end - max(committed.get(tp, first), first)
        for tp, (first, end) in offsets.items()
    }
    letters = await broker.offsets([dead_letter_topic(status.service).name])
    status.dead_letters = sum(end - first for first, end in letters.values())
