"""Composition root of the safety-monitoring service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.service import ServiceDefinition

from . import api, handlers, rules
from .models import messaging, metadata

escalation_rules = rules.load()

definition = ServiceDefinition(
    name="safety",
    title="carecoord safety monitoring",
    metadata=metadata,
    tables=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(api.build_router(escalation_rules),),
    register_handlers=handlers.register_with(escalation_rules),
)
