"""Composition root of the engagement service: built by ``serve`` from its settings, nothing at import."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from carecoord_shared.auth import jurisdiction_lookup
from carecoord_shared.auth.care import care_relation_lookup
from carecoord_shared.faults import FailurePoints
from carecoord_shared.http.fhir import fhir_router
from carecoord_shared.service import ServiceDefinition

from . import handlers, notifications, queries, routes
from .models import audit, care_relations, messaging, metadata, notify, patients
from .notify.sender import build_sender
from .notify.staff_routes import build_staff_router
from .settings import EngagementSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: EngagementSettings) -> ServiceDefinition:
    sender = build_sender(
        settings,
        notify,
        # Without CARECOORD_INTAKE_API_TOKEN: a development service token, minted per request.
        auth_jwt_secret=settings.auth_jwt_secret.get_secret_value(),
        auth_issuer=settings.auth_issuer,
        auth_audience=settings.auth_audience,
        on_failed=notifications.delivery_failed,
        failure_points=FailurePoints(settings.crash_at, settings.transient_at),
    )
    return ServiceDefinition(
        name="engagement",
        title="carecoord engagement: tasks and notifications",
        metadata=metadata,
        tables=messaging,
        audit=audit,
        jurisdiction_of=jurisdiction_lookup(patients),
        # ADR 0015: the care team and review assignees first (they outlast a task), then a task of the
        # clinician's or one waiting in the clinicians' queue (someone licensed must be able to pick it up).
        relations=(care_relation_lookup(care_relations), queries.task_relation),
        migrations_dir=MIGRATIONS,
        routers=(
            routes.build_router(),
            build_staff_router(notify),
            # No FHIR resource yet (a Task mapping would be the one); the CapabilityStatement every service has.
            fhir_router("engagement", ()),
        ),
        register_handlers=partial(handlers.register, settings=settings),
        # Messages wait in `notifications` while the sender is off (CARECOORD_NOTIFY_ENABLED=false).
        background=(sender.run,) if settings.notify_enabled else (),
    )
