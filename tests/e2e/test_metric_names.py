"""Every metric an alert rule or a dashboard panel reads is really exported by a running service.

A rule over a name no service exports never fires, and promtool cannot know: its
unit tests feed the series by hand. So the six services run against the real
Kafka and PostgreSQL, a little traffic makes the metrics that appear only once
used appear (a review acknowledged, a dead letter, an event stamped ahead of the
consumer's clock, a notification sent), and each name read out of deploy/prometheus/alerts.yml and
deploy/grafana/dashboards/*.json must be a sample name on some service's /metrics.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from carecoord_contracts import Envelope
from carecoord_contracts.patient_app import SideEffectReportSubmitted
from carecoord_contracts.safety import CheckInMissed
from carecoord_contracts.topics import PATIENT_APP_REPORTS, SAFETY_REPORTS, SERVICES
from carecoord_devstack.paths import REPO_ROOT
from carecoord_devstack.stack import Stack
from tests.auth import api_client
from tests.conftest import eventually
from tests.e2e import access_cases as ac
from tests.kafka_io import publish_envelope, publish_event, publish_raw
from tests.promql import exported_names, metric_names

pytestmark = pytest.mark.e2e

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARDS = REPO_ROOT / "deploy" / "grafana" / "dashboards"
# Written by Prometheus itself for each scrape target, not by a service.
PROMETHEUS_SYNTHETIC = {"up"}
# The broker checks every record batch it is sent, so no test can write one the consumer cannot
# decode: this counter appears on real corruption only. Its name is checked against the instrument
# the code registers instead (rendered as the exporter does).
NOT_DRIVABLE_LIVE = {"carecoord_consumer_undecodable_records_total"}
# Read by no rule or panel yet, but made to appear by the traffic: their rendering is checked against the code too.
DRIVEN = {"carecoord_notifications_sent_total"}
_SECONDS = re.compile(r'unit\s*=\s*"s"')
SOURCES = [REPO_ROOT / "shared" / "src", *sorted((REPO_ROOT / "services").glob("*/src"))]
_INSTRUMENT = re.compile(
    r"""create_(counter|histogram|observable_gauge|gauge|up_down_counter|observable_counter)\(\s*"([a-z0-9_.]+)"([^)]*)"""
)


def registered_names() -> set[str]:
    """The Prometheus names of every OpenTelemetry instrument the code creates: dots to underscores,
    a unit "s" as _seconds, a counter's _total, a histogram's _bucket/_sum/_count."""
    names: set[str] = set()
    for source in SOURCES:
        for path in source.rglob("*.py"):
            for kind, name, rest in _INSTRUMENT.findall(path.read_text()):
                base = name.replace(".", "_") + ("_seconds" if _SECONDS.search(rest) else "")
                if kind.endswith("counter") and kind != "up_down_counter":
                    names.add(base + "_total")
                elif kind == "histogram":
                    names |= {base + "_bucket", base + "_sum", base + "_count"}
                else:
                    names.add(base)
    return names


def queried() -> dict[str, set[str]]:
    """Each metric name read by an alert or a panel -> which ones read it."""
    readers: dict[str, set[str]] = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                readers.setdefault(name, set()).add(f"alert {rule['alert']}")
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                for name in metric_names(target["expr"]):
                    readers.setdefault(name, set()).add(f"panel {panel['title']!r}")
    return readers


async def _exported(stack: Stack) -> dict[str, set[str]]:
    """Each sample name on some service's /metrics -> the services that export it."""
    by_name: dict[str, set[str]] = {}
    async with api_client(timeout=10) as http:
        for service in SERVICES:
            text = (await http.get(f"{stack.services[service].url}/metrics")).text
            for name in exported_names(text):
                by_name.setdefault(name, set()).add(service)
    return by_name


async def _drive_traffic(stack: Stack) -> None:
    """What makes the metrics that appear only once used appear."""
    patient = await ac.registered_patient(stack, "CO", "safety", "engagement")
    async with api_client(base_url=stack.services["safety"].url, timeout=10) as http:
        # A review opened and acknowledged: carecoord.review.time_to_acknowledge (and events published, consumed).
        reported = await http.post(
            "/v1/side-effect-reports", json={"patient_id": str(patient), "symptoms": ["dizziness"], "grade": 2}
        )
        assert reported.status_code == 201 and reported.json()["review_id"], reported.text
        acknowledged = await http.post(
            f"/v1/reviews/{reported.json()['review_id']}/acknowledge", json={"clinician_id": "dr-lee"}
        )
        assert acknowledged.status_code == 200, acknowledged.text
    # A dead letter: carecoord.deadletters.
    await publish_raw(
        stack.kafka.bootstrap, PATIENT_APP_REPORTS.name, b"not an envelope", key=str(uuid.uuid4()).encode()
    )
    # A producer whose clock runs an hour ahead: carecoord.events.clock_skew (processed, not dead-lettered).
    ahead = Envelope.wrap(
        SideEffectReportSubmitted(report_id=uuid.uuid4(), symptoms=["nausea"], grade=1),
        patient_id=patient,
        producer="patient-app",
        occurred_at=datetime.now(UTC) + timedelta(hours=1),
    )
    await publish_envelope(stack.kafka.bootstrap, PATIENT_APP_REPORTS.name, ahead)
    # A missed check-in, as safety announces it: engagement mails the patient, carecoord.notifications.sent.
    missed = CheckInMissed(appointment_id=uuid.uuid4(), hours_since_start=4)
    await publish_event(stack.kafka.bootstrap, SAFETY_REPORTS.name, missed, patient, producer="safety")


@pytest.fixture(scope="module")
async def exported(services: Stack) -> dict[str, set[str]]:
    await _drive_traffic(services)
    required = (set(queried()) | DRIVEN) - PROMETHEUS_SYNTHETIC - NOT_DRIVABLE_LIVE

    async def all_required() -> dict[str, set[str]] | None:
        found = await _exported(services)
        return found if required <= set(found) else None

    try:
        return await eventually(all_required, timeout=60, interval=1, what="every queried metric exported")
    except AssertionError:
        return await _exported(services)  # the test says which are missing, and who reads them


def test_the_rules_and_the_dashboard_name_metrics_at_all() -> None:
    readers = queried()
    assert {"carecoord_consumer_lag", "carecoord_deadletters_total", "carecoord_outbox_oldest_age_seconds"} <= set(
        readers
    )


async def test_every_metric_an_alert_or_a_panel_reads_is_exported_by_a_service(exported: dict[str, set[str]]) -> None:
    unexported = PROMETHEUS_SYNTHETIC | NOT_DRIVABLE_LIVE
    missing = {name: sorted(by) for name, by in queried().items() if name not in unexported and name not in exported}
    assert missing == {}, f"read but exported by no service: {missing}"


def test_a_metric_no_test_can_make_appear_is_one_the_code_registers() -> None:
    assert set(queried()) >= NOT_DRIVABLE_LIVE
    assert NOT_DRIVABLE_LIVE - registered_names() == set()


def test_what_the_test_reads_as_names_is_what_the_exporter_writes(exported: dict[str, Any]) -> None:
    """The suffixes as the OpenTelemetry exporter renders them: a counter _total, a unit "s" _seconds, a histogram _bucket;
    and the rendering of registered_names() agrees with the exporter on every carecoord metric exported."""
    assert "carecoord_deadletters_total" in exported and "carecoord_deadletters" not in exported
    assert "carecoord_outbox_oldest_age_seconds" in exported
    assert "carecoord_review_time_to_acknowledge_seconds_bucket" in exported
    assert set(exported) >= DRIVEN, "the traffic's notification was never counted as sent"
    unregistered = {name for name in exported if name.startswith("carecoord_")} - registered_names()
    assert unregistered == set(), "exported, but no literal create_* call in the code registers these names"
