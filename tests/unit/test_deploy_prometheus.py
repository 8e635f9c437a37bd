"""deploy/prometheus and deploy/grafana: promtool passes the rules and their unit tests, and a
broken rule, a rule test that no longer holds, or a broken dashboard query is refused.
Alerts and panels speak of services, topics and reasons, never of a patient; the compose
stack scrapes every service and mounts what is checked here."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .deploy_support import DEPLOY, compose, validate, workspace_services

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "carecoord.json"
# Labels an alert may keep or quote: names from the code and the registry. A patient id, a
# key or an event id would make every alert a new series and put PHI into the pager.
ALLOWED_LABELS = {
    "service",
    "topic",
    "partition",
    "reason",
    "producer",
    "event_type",
    "outcome",
    "priority",
    "le",
    "job",
    "instance",
}


def _rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    ]


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(PROMETHEUS, tmp_path / "prometheus")
    return tmp_path / "prometheus"


def test_promtool_passes_the_config_the_rules_and_their_unit_tests() -> None:
    assert validate.prometheus_errors() == []


def test_every_alert_has_a_rule_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case.get("exp_alerts")}
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fired == set(), "an alert no test makes fire"
    assert alerts - quiet == set(), "an alert no test shows quiet"


def test_a_rule_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    rules = copy / "alerts.yml"
    rules.write_text(
        rules.read_text().replace(
            "max by (service) (carecoord_consumer_parked_keys) > 0",
            "max by (service (carecoord_consumer_parked_keys) > 0",
        )
    )
    errors = validate.prometheus_errors(copy)
    assert any("check rules" in e for e in errors), errors


def test_a_rule_that_no_longer_fires_on_its_fault_fails_its_unit_test(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    rules = copy / "alerts.yml"
    rules.write_text(
        rules.read_text().replace(
            "(carecoord_outbox_oldest_age_seconds) > 60", "(carecoord_outbox_oldest_age_seconds) > 600"
        )
    )
    errors = validate.prometheus_errors(copy)
    assert any("test rules" in e for e in errors) and any("CarecoordOutboxAgeing" in e for e in errors), errors


def test_alerts_aggregate_to_and_quote_only_names_never_a_patient() -> None:
    for rule in _rules():
        grouped = {
            label.strip()
            for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"])
            for label in clause.split(",")
        }
        quoted = set(re.findall(r"\$labels\.(\w+)", json.dumps(rule.get("annotations", {}))))
        assert grouped <= ALLOWED_LABELS and quoted <= ALLOWED_LABELS, rule["alert"]
        assert "patient" not in rule["expr"], rule["alert"]


def test_every_dashboard_query_parses_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    assert validate.dashboard_errors(DASHBOARD, tmp_path) == []
    dashboard = json.loads(DASHBOARD.read_text())
    dashboard["panels"][0]["targets"][0]["expr"] = "max by (service (carecoord_consumer_lag)"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(dashboard))
    assert validate.dashboard_errors(broken, tmp_path) != []


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    queries = " ".join(validate.dashboard_queries(json.loads(DASHBOARD.read_text())))
    for metric in (
        "carecoord_consumer_lag",
        "carecoord_consumer_stalled_partitions",
        "carecoord_consumer_parked_keys",
        "carecoord_outbox_parked_keys",
        "carecoord_outbox_oldest_age_seconds",
        "carecoord_deadletters_total",
        "carecoord_review_time_to_acknowledge_seconds_bucket",
    ):
        assert metric in queries, metric
    assert "patient" not in queries


def test_compose_prometheus_scrapes_every_service_with_the_checked_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    scraped = {c["labels"]["service"]: c["targets"] for c in job["static_configs"]}
    assert scraped == {s: [f"{s}:8000"] for s in workspace_services()}
    services = compose()["services"]
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert config["rule_files"] == ["alerts.yml"], "relative to the config, where compose mounts the rules"


@pytest.mark.parametrize("provisioned", ["datasources/prometheus.yml", "dashboards/carecoord.yml"])
def test_compose_grafana_is_provisioned_from_deploy(provisioned: str) -> None:
    grafana = compose()["services"]["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert (DEPLOY / "grafana" / "provisioning" / provisioned).exists()
    [source] = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert {p["datasource"]["uid"] for p in panels} == {source["uid"]}
