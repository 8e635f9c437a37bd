"""Offline schema validation of everything under deploy/ that a cluster or docker would read.

- Kubernetes: every kustomization (base, topics, overlays/*) is rendered with
  kustomize, then each resource is checked against a schema, failing closed
  (a kind without a schema is an error, not a skip):
  built-in kinds against the Kubernetes JSON schemas bundled in the PyPI
  package kubernetes-validate (strict: unknown fields are errors); KEDA kinds
  against the KEDA CRD schemas shipped in the npm package @kubernetes-models/keda
  (deploy/validate/keda.mjs); Strimzi KafkaTopics against
  deploy/schemas/kafkatopic-kafka.strimzi.io-v1.json.
- docker-compose.yml: against the compose-spec JSON schema embedded in
  compose-go, the library docker compose loads files with
  (deploy/validate/compose-validate).
- deploy/prometheus: promtool checks the scrape config and the alert rules and
  runs the rules' unit tests (alerts.test.yml); every query of the Grafana
  dashboard (deploy/grafana/dashboards) is parsed by promtool too, as a
  recording rule of a throwaway rules file.

The tools are installed by `make setup` into .local/tools; `make validate-deploy`
runs this file. Nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / ".local" / "tools" / "bin"
KUSTOMIZE = TOOLS / "kustomize"
COMPOSE_VALIDATE = TOOLS / "compose-validate"
PROMTOOL = TOOLS / "promtool"
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
KEDA_VALIDATOR = ROOT / "deploy" / "validate" / "keda.mjs"
SCHEMAS = ROOT / "deploy" / "schemas"
KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMAS = {("kafka.strimzi.io/v1", "KafkaTopic"): SCHEMAS / "kafkatopic-kafka.strimzi.io-v1.json"}


def kustomizations() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def render(kustomization: Path) -> list[dict[str, Any]]:
    built = subprocess.run([str(KUSTOMIZE), "build", str(kustomization)], check=False, capture_output=True, text=True)
    if built.returncode:
        raise ValueError(f"kustomize build {kustomization} failed: {built.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def name_of(resource: dict[str, Any]) -> str:
    return f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"


def kubernetes_errors(resources: list[dict[str, Any]]) -> list[str]:
    """Every schema error of the given resources, one line each; empty when all are valid."""
    errors: list[str] = []
    keda = [r for r in resources if str(r.get("apiVersion", "")).startswith("keda.sh/")]
    for resource in resources:
        if resource in keda:
            continue
        crd_schema = CRD_SCHEMAS.get((resource.get("apiVersion"), resource.get("kind")))
        if crd_schema:
            validator = jsonschema.Draft202012Validator(json.loads(crd_schema.read_text()))
            errors += [
                f"{name_of(resource)}: {'.'.join(map(str, e.path))}: {e.message}"
                for e in validator.iter_errors(resource)
            ]
            continue
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{name_of(resource)}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{name_of(resource)}: no schema: {e.message}")
    if keda:
        checked = subprocess.run(
            ["node", str(KEDA_VALIDATOR)], input=json.dumps(keda), check=False, capture_output=True, text=True
        )
        errors += [line for line in checked.stdout.splitlines() if not line.endswith(": valid")]
        if checked.returncode and not errors:
            errors.append(f"keda validator failed: {checked.stderr.strip()}")
    return errors


def compose_errors(compose_file: Path) -> list[str]:
    checked = subprocess.run([str(COMPOSE_VALIDATE), str(compose_file)], check=False, capture_output=True, text=True)
    return checked.stderr.strip().splitlines() if checked.returncode else []


def prometheus_errors(directory: Path = PROMETHEUS) -> list[str]:
    """promtool's complaints about the config, the alert rules and their unit tests in ``directory``; empty when all pass."""
    errors: list[str] = []
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ):
        # From the directory: the config and the tests name the rules file relative to themselves.
        done = subprocess.run([str(PROMTOOL), *args], check=False, capture_output=True, text=True, cwd=directory)
        if done.returncode:
            errors += [
                f"promtool {' '.join(args)}: {line}"
                for line in (done.stdout + done.stderr).splitlines()
                if line.strip()
            ]
    return errors


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a Grafana dashboard's panels (rows nest panels one level)."""
    panels = [p for panel in dashboard.get("panels", []) for p in [panel, *panel.get("panels", [])]]
    return [target["expr"] for panel in panels for target in panel.get("targets", []) if target.get("expr")]


def dashboard_errors(dashboard_file: Path, scratch: Path) -> list[str]:
    """promtool's complaints about the dashboard's queries; empty when every one parses."""
    queries = dashboard_queries(json.loads(dashboard_file.read_text()))
    if not queries:
        return [f"{dashboard_file.name}: no queries"]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)],
            }
        ]
    }
    rules_file = scratch / f"{dashboard_file.stem}.rules.yml"
    rules_file.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(rules_file)], check=False, capture_output=True, text=True
    )
    return (
        [f"{dashboard_file.name}: {line}" for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        if done.returncode
        else []
    )


def _report(name: str, errors: list[str]) -> int:
    print(f"{name}: " + ("valid" if not errors else f"{len(errors)} errors"))
    for error in errors:
        print(f"  {error}")
    return len(errors)


def main() -> None:
    failures = 0
    for kustomization in kustomizations():
        failures += _report(str(kustomization.relative_to(ROOT)), kubernetes_errors(render(kustomization)))
    failures += _report("docker-compose.yml", compose_errors(ROOT / "docker-compose.yml"))
    failures += _report(str(PROMETHEUS.relative_to(ROOT)), prometheus_errors())
    with tempfile.TemporaryDirectory() as scratch:
        for dashboard in sorted(DASHBOARDS.glob("*.json")):
            failures += _report(str(dashboard.relative_to(ROOT)), dashboard_errors(dashboard, Path(scratch)))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
