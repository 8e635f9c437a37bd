# carecoord: two commands for a newcomer, `make run` and `make test`.
# Everything is installed into the git-ignored .local/ and .venv/ folders.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .local/tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON := $(shell command -v python3.11 || command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: help setup run test up down status clean contracts

help:
	@echo "make run    start Kafka, PostgreSQL and the five services (Ctrl-C stops all)"
	@echo "make test   install what is needed and run the whole suite"
	@echo "make up | down | status   the infrastructure alone"
	@echo "make contracts            regenerate the AsyncAPI document, JSON Schemas and event catalog"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml $(wildcard services/*/pyproject.toml) deploy/local/pyproject.toml cli/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

tools/asyncapi/node_modules/.installed: tools/asyncapi/package.json tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --no-audit --no-fund --loglevel=error
	@touch $@

setup: .venv/.synced tools/asyncapi/node_modules/.installed
	.venv/bin/devstack fetch

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

# Regenerate docs/asyncapi.json, docs/schemas/ and docs/events.md from the contracts.
contracts: .venv/.synced
	.venv/bin/carecoord-contracts generate
	.venv/bin/carecoord-contracts compat

clean: down
	rm -rf .local/stack .local/test-stack
