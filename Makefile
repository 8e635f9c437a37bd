# carecoord: two commands for a newcomer, `make run` and `make test`.
# Everything is installed into the git-ignored .local/ and .venv/ folders.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
# One line before and after each set-up step, with its time (tools/step).
STEP := tools/step
# The interpreter itself, not a shim (pyenv's): uv compares it with the venv's and
# would otherwise rebuild .venv on every sync.
export UV_PYTHON := $(shell $$(command -v python3.11 || command -v $(PYTHON)) -c 'import sys; print(sys.executable)')
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: help setup run test test-unit lint soak bench up down status clean contracts manifests validate-deploy

help:
	@echo "make run    start Kafka, PostgreSQL and the six services (Ctrl-C stops all)"
	@echo "make test   install what is needed and run the whole suite"
	@echo "make test-unit            the fast layer alone (tests/unit: no Kafka, no PostgreSQL)"
	@echo "make lint                 ruff (lint and format check), mypy over every package, import-linter's layer contracts"
	@echo "make soak   the fault-injection suite scaled up (~12 min on 2 cores; own stack): SOAK_ARGS=... for pytest"
	@echo "make bench  throughput per layer next to the raw Kafka client, scaling, latency under load, memory, profile (own stack; BENCH_ARGS=--quick for a smoke run)"
	@echo "make up | down | status   the infrastructure alone"
	@echo "make contracts            regenerate the AsyncAPI document, JSON Schemas and event catalog"
	@echo "make manifests            regenerate deploy/k8s's KafkaTopics and per-service manifests from the topic registry"
	@echo "make validate-deploy      check deploy/k8s and docker-compose.yml against their schemas, the alert rules and dashboard with promtool (offline)"

$(UV):
	@$(STEP) "uv $(UV_VERSION) into $(TOOLS) (pip, from PyPI)" \
	  bash -c '$(PYTHON) -m venv $(TOOLS) && $(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)'

.venv/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) deploy/local/pyproject.toml cli/pyproject.toml
	@$(STEP) "Python packages into .venv (uv sync, from PyPI)" $(UV) sync --quiet --frozen --all-packages
	@touch $@

tools/asyncapi/node_modules/.installed: tools/asyncapi/package.json tools/asyncapi/package-lock.json
	@$(STEP) "AsyncAPI validator into tools/asyncapi (npm ci)" npm ci --prefix tools/asyncapi --no-audit --no-fund --loglevel=error
	@touch $@

# Offline validators of deploy/: kustomize and compose-validate built from the
# Go module in deploy/validate (versions pinned by its go.mod/go.sum), and the
# KEDA CRD schemas from npm.
$(TOOLS)/bin/kustomize $(TOOLS)/bin/compose-validate &: deploy/validate/go.mod deploy/validate/go.sum deploy/validate/compose-validate/main.go
	@$(STEP) "kustomize into $(TOOLS)/bin (go build, from the Go module proxy)" \
	  bash -c 'cd deploy/validate && GOTOOLCHAIN=local go build -o $(abspath $(TOOLS)/bin/kustomize) sigs.k8s.io/kustomize/kustomize/v5'
	@$(STEP) "compose-validate into $(TOOLS)/bin (go build)" \
	  bash -c 'cd deploy/validate && GOTOOLCHAIN=local go build -o $(abspath $(TOOLS)/bin/compose-validate) ./compose-validate'

# promtool checks and unit-tests deploy/prometheus's alert rules. Its own module (pinned by
# deploy/validate/promtool/go.mod/go.sum), so Prometheus' dependencies never move kustomize's.
# Built from source it reports no version unless told: the pinned module's, from go.mod.
# remove_all_sd (Prometheus' own build tag) leaves out the cloud service-discovery plugins (AWS, Azure,
# GCE, ...) and their SDKs: our scrape config is static. A cold build on 2 cores: 2.5 min instead of 5.8.
$(TOOLS)/bin/promtool: deploy/validate/promtool/go.mod deploy/validate/promtool/go.sum
	@$(STEP) "promtool into $(TOOLS)/bin (go build, from the Go module proxy; minutes the first time)" \
	  bash -c 'cd deploy/validate/promtool && version=$$(GOTOOLCHAIN=local go list -m -f "{{.Version}}" github.com/prometheus/prometheus) && \
	    GOTOOLCHAIN=local go build -tags remove_all_sd -ldflags "-X github.com/prometheus/common/version.Version=$$version" \
	      -o $(abspath $(TOOLS)/bin/promtool) github.com/prometheus/prometheus/cmd/promtool'

deploy/validate/node_modules/.installed: deploy/validate/package.json deploy/validate/package-lock.json
	@$(STEP) "KEDA CRD schemas into deploy/validate (npm ci)" npm ci --prefix deploy/validate --no-audit --no-fund --loglevel=error
	@touch $@

# What the suite runs besides Python: validators and promtool (the unit layer needs these, not a stack).
CHECKERS := tools/asyncapi/node_modules/.installed deploy/validate/node_modules/.installed $(TOOLS)/bin/kustomize \
  $(TOOLS)/bin/compose-validate $(TOOLS)/bin/promtool

setup: .venv/.synced $(CHECKERS)
	@.venv/bin/devstack fetch

run: setup
	@.venv/bin/devstack run

up: setup
	.venv/bin/devstack up

down:
	.venv/bin/devstack down

status:
	.venv/bin/devstack status

test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# The fast layer: no Kafka, no PostgreSQL (so no `devstack fetch`).
test-unit: .venv/.synced $(CHECKERS)
	.venv/bin/python -m pytest tests/unit -q $(PYTEST_ARGS)

# Every package mypy checks (strict for carecoord_shared, see [tool.mypy] in pyproject.toml).
MYPY_PACKAGES := carecoord_contracts carecoord_records carecoord_shared carecoord_intake carecoord_scheduling carecoord_dosing carecoord_safety \
  carecoord_billing carecoord_engagement carecoord_cli carecoord_devstack

# The checks, each run even when an earlier one fails (so one run shows every finding); fails if any failed.
# Needs only the synced venv (no stack, no promtool). .pre-commit-config.yaml runs the same commands.
lint: .venv/.synced
	@failed=0; \
	  .venv/bin/ruff check . || failed=1; \
	  .venv/bin/ruff format --check . || failed=1; \
	  $(MAKE) --no-print-directory lint-mypy || failed=1; \
	  $(MAKE) --no-print-directory lint-imports || failed=1; \
	  exit $$failed

# Parts of `make lint` that pre-commit calls too (no prerequisites: they use the venv as it is).
.PHONY: lint-mypy lint-imports
lint-mypy:
	.venv/bin/mypy $(addprefix -p ,$(MYPY_PACKAGES))

# The layers and boundaries in pyproject.toml's [tool.importlinter] contracts.
lint-imports:
	.venv/bin/lint-imports

# The fault suite (bounded in `make test`) scaled up: more patients, four rounds of faults.
soak: setup
	CARECOORD_SOAK=1 .venv/bin/python -m pytest tests/e2e/test_faults.py -q $(SOAK_ARGS)

# Not part of `make test`: starts its own stack in .local/bench-stack, writes .local/bench-results/.
bench: setup
	$(UV) sync --frozen --all-packages --group bench
	.venv/bin/python -m bench $(BENCH_ARGS)

# Regenerate docs/asyncapi.json, docs/schemas/ and docs/events.md from the contracts.
contracts: .venv/.synced
	.venv/bin/carecoord-contracts generate
	.venv/bin/carecoord-contracts compat

clean: down
	rm -rf .local/stack .local/test-stack

# Regenerate deploy/k8s/topics/topics.yaml and deploy/k8s/base/<service>.yaml from the topic registry.
manifests: .venv/.synced
	.venv/bin/python deploy/k8s/generate.py

validate-deploy: setup
	.venv/bin/python deploy/validate/validate.py
