"""Composition root of the safety-monitoring service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.service import Runtime, ServiceDefinition

from . import fhir, handlers, reach, rota_routes, routes, rules, sessions, timers
from .models import audit, jurisdictions, messaging, metadata
from .settings import SafetySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: SafetySettings, clock: timers.Clock = timers.system_clock) -> ServiceDefinition:
    escalation_rules = rules.load()

    async def run_timers(runtime: Runtime) -> None:
        await timers.TimerLoop(
            runtime.uow, sessions.timer_actions(escalation_rules, settings.lead_after), clock=clock
        ).run()

    return ServiceDefinition(
        name="safety",
        title="carecoord safety monitoring",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(jurisdictions),
        relations=reach.RELATIONS,
        migrations_dir=MIGRATIONS,
        routers=(
            routes.build_router(escalation_rules, clock),
            rota_routes.build_router(clock),
            fhir_router("safety", fhir.RESOURCES),
        ),
        register_handlers=handlers.register_with(escalation_rules, clock),
        background=(run_timers,),
    )
