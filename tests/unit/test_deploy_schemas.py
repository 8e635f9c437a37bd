"""deploy/k8s and docker-compose.yml validate against their schemas, offline, and a broken one does not."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from .deploy_support import DEPLOY, of_kind, rendered, validate

KUSTOMIZATIONS = [str(p.relative_to(DEPLOY / "k8s")) for p in validate.kustomizations()]


def test_every_kustomization_is_found() -> None:
    assert {"base", "topics", "overlays/production", "overlays/staging"} <= set(KUSTOMIZATIONS)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_renders_to_valid_resources(kustomization: str) -> None:
    resources = rendered(kustomization)
    assert resources
    assert validate.kubernetes_errors(list(resources)) == []


def test_every_rendered_kind_has_a_schema() -> None:
    kinds = {(r["apiVersion"], r["kind"]) for k in KUSTOMIZATIONS for r in rendered(k)}
    assert ("keda.sh/v1alpha1", "ScaledObject") in kinds
    assert ("kafka.strimzi.io/v1", "KafkaTopic") in kinds
    assert ("apps/v1", "Deployment") in kinds


def test_compose_file_is_valid() -> None:
    assert validate.compose_errors(DEPLOY.parent / "docker-compose.yml") == []


def _base() -> list[dict[str, Any]]:
    return copy.deepcopy(list(rendered("base")))


def _broken(kind: str, name: str, breaking: Any) -> list[dict[str, Any]]:
    resources = _base() + copy.deepcopy(list(rendered("topics")))
    target = next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)
    breaking(target)
    return [target]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("kind", "name", "breaking", "complaint"),
    [
        ("Deployment", "safety", lambda d: d["spec"].update(replicas="two"), "replicas"),
        ("Deployment", "safety", lambda d: _container(d).update(livenessProbes={}), "livenessProbes"),
        ("Deployment", "dosing", lambda d: _container(d)["ports"][0].update(containerPort="http"), "containerPort"),
        ("NetworkPolicy", "billing", lambda p: p["spec"].update(policyTypes="Egress"), "policyTypes"),
        ("PodDisruptionBudget", "intake", lambda p: p["spec"].update(maxUnavailable=[1]), "maxUnavailable"),
        ("ScaledObject", "safety", lambda s: s["spec"].update(maxReplicaCount="three"), "maxReplicaCount"),
        ("ScaledObject", "dosing", lambda s: s["spec"].pop("scaleTargetRef"), "scaleTargetRef"),
        ("KafkaTopic", "safety.holds", lambda t: t["spec"].update(replicas=0), "replicas"),
        ("KafkaTopic", "safety.holds", lambda t: t["spec"].update(partition=3), "partition"),
        ("KafkaTopic", "safety.holds", lambda t: t["metadata"]["labels"].clear(), "strimzi.io/cluster"),
    ],
)
def test_a_broken_resource_is_refused(kind: str, name: str, breaking: Any, complaint: str) -> None:
    errors = validate.kubernetes_errors(_broken(kind, name, breaking))
    assert errors and complaint in " ".join(errors), errors


def test_a_kind_without_a_schema_is_refused_not_skipped() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert validate.kubernetes_errors([unknown]) != []


def test_a_broken_kustomization_fails_through_the_whole_pipeline(tmp_path: Path) -> None:
    deployment = of_kind(rendered("base"), "Deployment")["scheduling"]
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = {"name": "http"}
    (tmp_path / "deployment.yaml").write_text(yaml.safe_dump(broken))
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    assert validate.kubernetes_errors(validate.render(tmp_path)) != []


def test_a_broken_compose_file_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    document["services"]["safety"]["ports"] = 8004
    document["services"]["dosing"]["healthchek"] = {}
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document))
    errors = " ".join(validate.compose_errors(broken))
    assert "ports" in errors or "healthchek" in errors, errors
