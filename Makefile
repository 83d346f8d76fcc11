# fastier.platform — every entry point a user or CI needs.
#
#   make demo        the main job against the embedded local AWS (installs what it needs)
#   make test        unit, contract and integration tests and the molecule scenarios
#   make lint        ansible-lint (production), ansible-test sanity, ruff
#   make local-up    start the local AWS endpoint and its PostgreSQL clusters
#   make local-down  stop exactly what local-up started
#   make bench-deploy  requests counted at the live URL during deploys, a rollback and a crash
#
# Nothing here calls Ansible Galaxy: the `ansible` package from PyPI carries
# amazon.aws, community.aws and community.postgresql.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
COLLECTIONS := .collections
COLLECTION_DIR := $(COLLECTIONS)/ansible_collections/fastier/platform
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
ARTIFACT := build/fastier-platform-$(VERSION).tar.gz
COLLECTION_SRC := galaxy.yml README.md requirements.txt bindep.txt $(shell find meta plugins roles playbooks docs inventories changelogs -type f 2>/dev/null)

export LOCAL_AWS_PORT ?= 5000
export LOCAL_AWS_STATE_DIR ?= $(CURDIR)/.local
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Bytecode of the module payloads' Python, kept between module runs
# (tools/module_code_cache.py; `make module-code-cache` installs it into .venv).
# FASTIER_MODULE_CODE_CACHE= make ... runs without it.
export FASTIER_MODULE_CODE_CACHE ?= $(CURDIR)/.cache/module-code
export PATH := $(CURDIR)/$(BIN):$(PATH)

# The test stack gets its own ports and state so it never touches a running demo.
TEST_ENV := LOCAL_AWS_PORT=$${LOCAL_AWS_TEST_PORT:-5100} LOCAL_PG_LEGACY_PORT=$${LOCAL_PG_LEGACY_TEST_PORT:-15532} \
            LOCAL_AWS_STATE_DIR=$(CURDIR)/.local/test LOCAL_EB_DELAY_S=0.5

.PHONY: help
help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

# --- setup ---------------------------------------------------------------------
# Re-created when missing or older than the dependency files (stale).
$(BIN)/.stamp: requirements.txt requirements-dev.txt constraints.txt
	@echo "setup: creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@rm -rf $(VENV)
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@
	@echo "setup: $(VENV) ready (ansible $$($(BIN)/python -c 'import ansible_collections, importlib.metadata as m; print(m.version("ansible"))'))"

.PHONY: venv
venv: $(BIN)/.stamp

# The module code cache's start-up hook in .venv (copied again when it changed).
.PHONY: module-code-cache
module-code-cache: venv
	@$(BIN)/python tools/module_code_cache.py --install

# PostgreSQL server binaries (Debian's packages) for the local clusters.
.PHONY: postgres
postgres:
	@tools/ensure-postgres.sh

# Graphviz (`dot`, Debian's package) for the report's architecture diagram.
.PHONY: graphviz
graphviz:
	@tools/ensure-graphviz.sh

# HAProxy (Debian's package): the load balancer of local Elastic Beanstalk
# environments that run their version.
.PHONY: haproxy
haproxy:
	@tools/ensure-haproxy.sh

# Build the collection artifact and install it where ansible.cfg looks, the
# way a user installs it (no Galaxy: dependencies come with `ansible`).
$(COLLECTION_DIR)/MANIFEST.json: $(BIN)/.stamp $(COLLECTION_SRC)
	@BIN=$(BIN) COLLECTIONS=$(COLLECTIONS) tools/install-collection.sh $(ARTIFACT)

.PHONY: collection
collection: $(COLLECTION_DIR)/MANIFEST.json

# --- local AWS -------------------------------------------------------------------
.PHONY: local-up local-down local-status
local-up: venv postgres haproxy
	@$(BIN)/python -m local_aws up

local-down: venv
	@$(BIN)/python -m local_aws down

local-status: venv
	@$(BIN)/python -m local_aws status

# --- the main job ------------------------------------------------------------------
.PHONY: demo
demo: collection module-code-cache postgres graphviz haproxy
	@$(BIN)/python -m local_aws run -- tools/demo.sh

# --- tests -------------------------------------------------------------------------
.PHONY: test test-stack
test: collection module-code-cache postgres graphviz haproxy
	@env $(TEST_ENV) $(BIN)/python -m local_aws run -- $(MAKE) --no-print-directory test-stack

# Runs inside `local_aws run`: the endpoint and clusters are up, and their
# address is in the environment (LOCAL_AWS_ENDPOINT, ...).
test-stack:
	@tools/test-all.sh

# --- benchmarks ---------------------------------------------------------------------
# Figures, not pass/fail. Each starts a private local AWS on free ports.
.PHONY: bench-deploy
bench-deploy: collection module-code-cache postgres haproxy
	@env -u LOCAL_AWS_ENDPOINT $(BIN)/python -m bench.deploy_under_load $(BENCH_ARGS)

# --- lint ---------------------------------------------------------------------------
.PHONY: lint ruff ansible-lint sanity
lint: ruff ansible-lint sanity

ruff: venv
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check . || { echo "ruff format: run 'make format'"; exit 1; }

ansible-lint: collection
	@$(BIN)/ansible-lint --offline

# ansible-test runs on the built artifact (what users get), installed outside
# this work tree; offline, it needs our pip bootstrap (see tools/sanity.sh).
sanity: collection
	@tools/sanity.sh $(ARTIFACT) $(SANITY_ARGS)

.PHONY: format
format: venv
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

.PHONY: constraints
constraints: venv
	@$(BIN)/python -m pip freeze --exclude-editable | sort > constraints.txt

.PHONY: clean
clean:
	-@$(BIN)/python -m local_aws down 2>/dev/null
	rm -rf build $(COLLECTIONS) .pytest_cache .ruff_cache
