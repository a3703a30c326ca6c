# Everything an operator or CI runs goes through these targets; README.md
# names them. Tools come from the pinned virtualenv in .venv/.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The sample app's own virtualenv (its pinned runtime plus pytest).
APP_VENV := .venv-app
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Molecule runs, as distro:scenario pairs. CI runs the four-host cluster
# (with the reliability drills) on Debian 12 and the catalog project
# (tests/fixtures/catalog: a project shaped unlike app/) on Debian 13; the
# sandbox (Debian 13) is CI's all-in-one host of the sample app. Also
# available: the all-in-one `default` scenario (the shared suite on one
# host), the web (web + data host) and redis (Redis alone) scenarios.
MOLECULE_RUNS ?= debian12:cluster debian13:catalog
# The local sandbox (files/sandbox.sh, inventories/sandbox).
SANDBOX_DISTRO ?= debian13

.PHONY: help install images lint syntax unit docs app-test bench bench-profile bench-deploy molecule drills test browser sandbox sandbox-test sandbox-destroy clean molecule-first molecule-rest-then-checks

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/ansible-playbook: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(BIN)/ansible-playbook ## Create .venv with the pinned toolchain and check the collections
	ansible-galaxy collection install --offline -r requirements.yml

images: ## Build the local systemd test-host images (reuses up-to-date ones)
	molecule/images/build.sh $(sort $(foreach run,$(MOLECULE_RUNS),$(word 1,$(subst :, ,$(run)))))

lint: install ## yamllint, ansible-lint (production profile), ruff
	status=0; \
	yamllint --strict . || status=1; \
	ansible-lint --strict || status=1; \
	ruff check . || status=1; \
	exit $$status

syntax: install ## ansible-playbook --syntax-check against the prod inventory
	ansible-playbook --syntax-check site.yml playbooks/check.yml -i inventories/prod

unit: install ## Controller-side tests (templates, input validation), on both cores
	pytest -q -n 2 --ignore=tests/browser tests

docs: install ## Write docs/REFERENCE.md from the roles' argument specs
	$(BIN)/python files/role_reference.py

$(APP_VENV)/bin/pytest: app/requirements.txt app/requirements-test.txt
	$(PYTHON) -m venv $(APP_VENV)
	$(APP_VENV)/bin/pip install --quiet --upgrade pip
	$(APP_VENV)/bin/pip install --quiet -r app/requirements-test.txt
	touch $@

app-test: $(APP_VENV)/bin/pytest ## The sample app's tests (starts its own redis-server)
	cd app && ../$(APP_VENV)/bin/pytest -q

# The bench's chart library and profiler go into the app's virtualenv here only, so CI
# never installs them.
$(APP_VENV)/.bench-requirements: tests/bench/requirements.txt $(APP_VENV)/bin/pytest
	$(APP_VENV)/bin/pip install --quiet -r tests/bench/requirements.txt
	touch $@

bench: install $(APP_VENV)/.bench-requirements ## Celery task-path figures on host processes (BENCH_TASKS=1000 for a smoke run)
	$(APP_VENV)/bin/python tests/bench/task_path.py

bench-profile: install $(APP_VENV)/.bench-requirements ## Where the default pool's time goes on no-op tasks (py-spy, about 2 minutes)
	$(APP_VENV)/bin/python tests/bench/profile_pool.py

bench-deploy: install images ## site.yml's time on fresh test hosts with 1, 2 and 4 worker hosts (about 20 minutes)
	tests/bench/deploy_scale.sh

molecule: install images ## Every run in MOLECULE_RUNS (distro:scenario pairs)
	for run in $(MOLECULE_RUNS); do \
	  distro=$${run%%:*}; scenario=$${run#*:}; \
	  echo "=== molecule test -s $$scenario on $$distro"; \
	  log=.molecule-logs/$$distro-$$scenario.log; mkdir -p .molecule-logs; \
	  MOLECULE_DISTRO=$$distro molecule test -s $$scenario 2>&1 | tee $$log || { \
	    echo "=== molecule test -s $$scenario on $$distro failed; pytest's summary (full log: $$log):"; \
	    sed -n '/short test summary info/,/ in [0-9.]*s/p' $$log | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-400; \
	    exit 1; }; \
	done

drills: install ## The cluster scenario with its reliability drills (docs/RELIABILITY.md)
	$(MAKE) molecule MOLECULE_RUNS=debian12:cluster

# Two sides at once, each printed whole when it ends. One side builds the
# first Molecule run's image and runs it (the cluster, four hosts, with the
# reliability drills, which wait on timers much of the time). The other runs
# the other Molecule runs, the sandbox and its browser test, then the linters
# and the controller-side and app tests, one after the other: they come last
# to fill the cores while the drills wait. A failure on one side ends
# `make test` when the other side ends. README.md has the times.
test: install ## The whole suite: what .ci/run runs
	$(MAKE) --no-print-directory -j2 --output-sync=target molecule-first molecule-rest-then-checks

molecule-first:
	$(MAKE) --no-print-directory molecule MOLECULE_RUNS="$(firstword $(MOLECULE_RUNS))"

# Each step runs even when one before it failed (a failed catalog run does
# not hide a lint finding; the browser test needs the sandbox); the side fails at the end if any did.
molecule-rest-then-checks:
	status=0; \
	$(MAKE) --no-print-directory molecule MOLECULE_RUNS="$(wordlist 2,$(words $(MOLECULE_RUNS)),$(MOLECULE_RUNS))" || status=1; \
	{ $(MAKE) --no-print-directory sandbox && $(MAKE) --no-print-directory sandbox-test; } || status=1; \
	$(MAKE) --no-print-directory --keep-going lint syntax unit app-test || status=1; \
	exit $$status

browser: ## Headless Chromium and its driver for sandbox-test, from Debian
	files/bootstrap.sh --browser

# A fresh machine may lack python3-venv or the Docker engine: bootstrap first.
sandbox: ## The whole stack in a local container: web app on 127.0.0.1:8000, Flower on :5555
	files/bootstrap.sh
	$(MAKE) --no-print-directory install
	SANDBOX_DISTRO=$(SANDBOX_DISTRO) files/sandbox.sh up

sandbox-test: install ## Flower and the Django admin of the running sandbox in headless Chromium (screenshots: artifacts/screenshots/)
	$(MAKE) --no-print-directory browser
	pytest -q tests/browser

sandbox-destroy: ## Remove the sandbox container (its secrets file stays)
	files/sandbox.sh destroy

clean: ## Remove .venv and Molecule state (images are kept)
	rm -rf $(VENV) $(APP_VENV) .ansible .molecule-logs
