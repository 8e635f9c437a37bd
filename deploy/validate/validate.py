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

The tools are installed by `make setup` into .local/tools; `make validate-deploy`
runs this file. Nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
KEDA_VALIDATOR = ROOT / "deploy" / "validate" / "keda.mjs"
SCHEMAS = ROOT / "deploy" / "schemas"
KUBERNETES_VERSION = "1.33.0"
CRD_SCHEMAS = {("kafka.strimzi.io/v1", "KafkaTopic"): SCHEMAS / "kafkatopic-kafka.strimzi.io-v1.json"}


def kustomizations() -> list[Path]:
    return sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def render(kustomization: Path) -> list[dict[str, Any]]:
    built = subprocess.run([str(KUSTOMIZE), "build", str(kustomization)], capture_output=True, text=True)
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
            errors += [f"{name_of(resource)}: {'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(resource)]
            continue
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{name_of(resource)}: {'.'.join(map(str, e.path))}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{name_of(resource)}: no schema: {e.message}")
    if keda:
        checked = subprocess.run(["node", str(KEDA_VALIDATOR)], input=json.dumps(keda), capture_output=True, text=True)
        errors += [line for line in checked.stdout.splitlines() if not line.endswith(": valid")]
        if checked.returncode and not errors:
            errors.append(f"keda validator failed: {checked.stderr.strip()}")
    return errors


def compose_errors(compose_file: Path) -> list[str]:
    checked = subprocess.run([str(COMPOSE_VALIDATE), str(compose_file)], capture_output=True, text=True)
    return checked.stderr.strip().splitlines() if checked.returncode else []


def main() -> None:
    failures = 0
    for kustomization in kustomizations():
        errors = kubernetes_errors(render(kustomization))
        print(f"{kustomization.relative_to(ROOT)}: " + ("valid" if not errors else f"{len(errors)} errors"))
        for error in errors:
            print(f"  {error}")
        failures += len(errors)
    errors = compose_errors(ROOT / "docker-compose.yml")
    print("docker-compose.yml: " + ("valid" if not errors else f"{len(errors)} errors"))
    for error in errors:
        print(f"  {error}")
    sys.exit(1 if failures or errors else 0)


if __name__ == "__main__":
    main()
