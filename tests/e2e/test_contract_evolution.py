"""Consumers in their own processes tolerate contract evolution: an older version
is upcast, and every service publishes the AsyncAPI of what it sends and receives."""

from __future__ import annotations

import uuid

import pytest

from carecoord_contracts.patient_app import SideEffectReportSubmittedV1
from carecoord_contracts.topics import SERVICES
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import journeys
from tests.kafka_io import events_for, publish_event

pytestmark = pytest.mark.e2e


async def test_safety_upcasts_a_version_1_report_from_an_old_app(services: Stack) -> None:
    patient = uuid.uuid4()
    await journeys.active_plan(services, patient)
    old = SideEffectReportSubmittedV1(report_id=uuid.uuid4(), symptom="loss_of_consciousness", grade=2)
    envelope = await publish_event(services.kafka.bootstrap, "patient-app.reports", old, patient)
    assert envelope.version == 1

    [reported] = await eventually(
        lambda: events_for(services.kafka.bootstrap, "safety.reports", patient, "SideEffectReported"),
        what="the v1 report recorded",
    )
    assert reported["payload"]["symptoms"] == ["loss_of_consciousness"]
    assert reported["payload"]["escalated"] is True
    assert reported["causation_id"] == str(envelope.event_id)
    await eventually(lambda: _paused(services, patient), what="plan paused by the upcast report")


async def test_every_service_serves_its_asyncapi_document(services: Stack) -> None:
    async with api_client(timeout=10) as http:
        for service in SERVICES:
            response = await http.get(journeys.url(services, service, "/docs/asyncapi"))
            assert response.status_code == 200, service
            document = response.json()
            assert document["asyncapi"] == "3.0.0"
            assert f"deadletter.{service}" in document["channels"]
            assert all(op.startswith(f"{service}.") for op in document["operations"])


async def _paused(stack: Stack, patient: uuid.UUID) -> bool:
    return (await journeys.plan(stack, patient))["status"] == "paused"
