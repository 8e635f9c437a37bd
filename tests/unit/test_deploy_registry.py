"""deploy/ and docker-compose.yml agree with the topic registry and with the workspace's services."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from carecoord_contracts.topics import ALL_TOPICS, SERVICES, topics_consumed_by
from carecoord_devstack.paths import REPO_ROOT

from .deploy_support import DEPLOY, compose, generate, of_kind, rendered, workspace_services

SECRET_NAMES = re.compile(r"PASSWORD|TOKEN|KEYS|DATABASE_URL")


def test_registry_and_workspace_name_the_same_services() -> None:
    assert sorted(SERVICES) == workspace_services()


def test_generated_manifests_are_current() -> None:
    checked = subprocess.run(
        [sys.executable, str(DEPLOY / "k8s" / "generate.py"), "--check"], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


def test_kafka_topics_are_the_registry_with_replication_3_and_min_isr_2() -> None:
    topics = of_kind(rendered("topics"), "KafkaTopic")
    assert set(topics) == {t.name for t in ALL_TOPICS}
    for topic in ALL_TOPICS:
        resource = topics[topic.name]
        assert resource["metadata"]["namespace"] == "kafka"
        assert resource["spec"]["partitions"] == topic.partitions
        assert resource["spec"]["replicas"] == 3
        assert resource["spec"]["config"]["min.insync.replicas"] == "2"
        assert resource["spec"]["config"]["retention.ms"] == str(topic.retention_ms)
        assert {k: resource["spec"]["config"][k] for k in topic.config} == topic.config


@pytest.mark.parametrize("kustomization", ["base", "overlays/production", "overlays/staging"])
def test_consumers_scale_on_their_group_lag_up_to_their_partitions(kustomization: str) -> None:
    scaled = of_kind(rendered(kustomization), "ScaledObject")
    assert set(scaled) == {s for s in SERVICES if topics_consumed_by(s)}
    for service, resource in scaled.items():
        consumed = topics_consumed_by(service)
        spec = resource["spec"]
        assert spec["scaleTargetRef"]["name"] == service
        assert spec["maxReplicaCount"] == max(t.partitions for t in consumed)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert {t["metadata"]["topic"] for t in spec["triggers"]} == {t.name for t in consumed}
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            assert trigger["metadata"]["consumerGroup"] == f"carecoord.{service}"
            assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_max_replicas_follow_the_registry_partitions() -> None:
    """Raising a topic's partitions in the registry raises the bound of every group that consumes it."""
    consumer = next(s for s in SERVICES if topics_consumed_by(s))
    topic = topics_consumed_by(consumer)[0]
    original = topic.partitions
    object.__setattr__(topic, "partitions", original + 9)
    try:
        assert generate.scaled_object(consumer)["spec"]["maxReplicaCount"] == original + 9
    finally:
        object.__setattr__(topic, "partitions", original)


@pytest.mark.parametrize("kustomization", ["base", "overlays/production", "overlays/staging"])
def test_every_service_has_a_hardened_deployment_service_and_budget(kustomization: str) -> None:
    resources = rendered(kustomization)
    deployments = of_kind(resources, "Deployment")
    assert set(deployments) == set(workspace_services())
    assert set(of_kind(resources, "Service")) == set(workspace_services())
    assert set(of_kind(resources, "PodDisruptionBudget")) == set(workspace_services())
    for service, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == [f"carecoord-{service}"]
        assert ("replicas" in deployment["spec"]) is not bool(topics_consumed_by(service)), (
            "KEDA owns a consumer's replicas"
        )
        assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("kustomization", ["base", "overlays/production", "overlays/staging"])
def test_secrets_are_referenced_never_inlined(kustomization: str) -> None:
    resources = rendered(kustomization)
    assert not of_kind(resources, "Secret")
    for deployment in of_kind(resources, "Deployment").values():
        for variable in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
            if SECRET_NAMES.search(variable["name"]):
                assert "secretKeyRef" in variable.get("valueFrom", {}), variable
    for config in of_kind(resources, "ConfigMap").values():
        assert not any(SECRET_NAMES.search(key) for key in config["data"])


def _peers(rule: dict) -> list[dict]:
    return rule["to"]


def test_each_service_reaches_only_dns_kafka_its_database_and_the_collector() -> None:
    resources = rendered("base")
    policies = of_kind(resources, "NetworkPolicy")
    config = next(
        r["data"]
        for r in resources
        if r["kind"] == "ConfigMap" and r["metadata"]["name"].startswith("carecoord-config")
    )
    # The port the services are told to dial is the one their policy lets them reach: the SASL_SSL listener.
    kafka_port = int(config["CARECOORD_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    assert kafka_port == 9093 and config["CARECOORD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert policies["default-deny"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for service in workspace_services():
        spec = policies[service]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == service
        assert spec["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8000}]}]
        egress = {
            (
                tuple(sorted(peer.get("podSelector", {}).get("matchLabels", {}).items())),
                tuple(p["port"] for p in rule["ports"]),
            )
            for rule in spec["egress"]
            for peer in _peers(rule)
        }
        expected = {
            ((("k8s-app", "kube-dns"),), (53, 53)),
            ((("strimzi.io/cluster", "carecoord"), ("strimzi.io/kind", "Kafka")), (kafka_port,)),
            ((("carecoord.io/database", service),), (5432,)),
            ((("app.kubernetes.io/name", "opentelemetry-collector"),), (4317, 4318)),
        }
        if service in ("billing", "engagement"):
            expected.add(((("app.kubernetes.io/name", "intake"), ("app.kubernetes.io/part-of", "carecoord")), (8000,)))
        if service == "engagement":  # the mail relay and the SMS provider, outside the cluster (an ipBlock)
            expected.add(((), (587, 465, 443)))
        assert egress == expected


def test_every_service_has_a_compose_service_built_from_the_one_image() -> None:
    services = compose()["services"]
    for service in workspace_services():
        definition = services[service]
        assert definition["command"] == [f"carecoord-{service}"]
        assert definition["image"] == services["topics"]["image"]
        assert definition["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert definition["environment"]["CARECOORD_DATABASE_URL"].endswith(f"@postgres:5432/{service}")
        assert "env_file" not in definition, "a service gets only its own variables, not the whole .env"
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert all(f"./services/{service}" in dockerfile for service in workspace_services())


def test_the_image_user_is_the_numeric_uid_the_pods_run_as() -> None:
    """runAsNonRoot can only verify a numeric USER; a name makes the kubelet refuse the pod."""
    (user,) = re.findall(r"^USER (\S+)$", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    uid, gid = user.split(":")
    for deployment in of_kind(rendered("base"), "Deployment").values():
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid)


def test_compose_topics_are_created_from_the_registry_and_nothing_else() -> None:
    services = compose()["services"]
    # carecoord-topics creates exactly ALL_TOPICS with the registry's partitions and settings.
    assert services["topics"]["command"][0] == "carecoord-topics"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_compose_secrets_come_from_env_interpolation() -> None:
    for name, definition in compose()["services"].items():
        for variable, value in (definition.get("environment") or {}).items():
            if SECRET_NAMES.search(variable):
                assert "${" in str(value), f"{name}: {variable} is inlined"


def _env_names() -> set[str]:
    names = {
        v for s in compose()["services"].values() for v in (s.get("environment") or {}) if v.startswith("CARECOORD_")
    }
    for kustomization in ("base", "overlays/production", "overlays/staging"):
        for deployment in of_kind(rendered(kustomization), "Deployment").values():
            names |= {v["name"] for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        for config in of_kind(rendered(kustomization), "ConfigMap").values():
            names |= {k for k in config["data"] if k.startswith("CARECOORD_")}
    return names


def _settings_variables() -> set[str]:
    """Every CARECOORD_ variable a settings class of the workspace reads."""
    import importlib
    import inspect

    from pydantic_settings import BaseSettings

    from carecoord_shared.config import ServiceSettings

    classes: set[type[BaseSettings]] = {ServiceSettings}
    for service in workspace_services():
        try:
            module = importlib.import_module(f"carecoord_{service}.settings")
        except ModuleNotFoundError:
            continue
        classes |= {
            c
            for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, BaseSettings) and c is not BaseSettings
        }
    return {
        f"{cls.model_config.get('env_prefix', '')}{field}".upper()
        for cls in classes
        for field in cls.model_fields
        if field != "service"  # set by each service's entrypoint, not by the environment
    }


def test_readme_configuration_documents_every_variable() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") : readme.index("## The production-like stack")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert _settings_variables() - documented == set()
    assert _env_names() - documented == set()
