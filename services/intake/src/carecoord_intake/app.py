"""Composition root of the intake service."""

from __future__ import annotations

from pathlib import Path

from carecoord_shared.service import ServiceDefinition

from . import api
from .models import messaging, metadata

definition = ServiceDefinition(
    name="intake",
    title="carecoord intake",
    metadata=metadata,
    tables=messaging,
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(api.router,),
)
