# Lianchen developer entry points. `make` alone lists the targets.
#
# Local infrastructure runs as plain processes (no Docker): RabbitMQ from the
# Debian package, FerretDB (MongoDB wire protocol on SQLite) built with Go,
# all state under var/ (git-ignored). Set AMQP_URI / MONGO_URI to use servers
# you already run; then nothing is started for them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
LOCAL := $(ROOT)/infra/local
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
PYTEST := $(VENV)/bin/pytest

INSTANCES ?= 1
N ?= 20
export INSTANCES

# Defaults for the Python processes we run here. Deliberately NOT exported as
# make variables: the infra scripts treat a set AMQP_URI/MONGO_URI as "the user
# runs their own server" and then start nothing.
PYENV = AMQP_URI="$${AMQP_URI:-amqp://guest:guest@127.0.0.1:5672/}" \
	MONGO_URI="$${MONGO_URI:-mongodb://127.0.0.1:$${FERRETDB_PORT:-27017}/}" \
	RABBIT_MGMT_URL="$${RABBIT_MGMT_URL:-http://guest:guest@127.0.0.1:15672}"

# pytest exits 5 when it collected no tests; report it but do not fail on it.
define run_pytest
	cd $(ROOT) && rc=0 && $(PYENV) $(PYTEST) -q $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected in $(1)"; rc=0; fi; \
	exit $$rc
endef

.PHONY: help venv infra run stop status test test-faults test-unit bench logs clean contracts

help: ## list the targets
	@echo "Lianchen make targets:"
	@grep -E '^[a-z-]+:.*## ' $(lastword $(MAKEFILE_LIST)) | \
		awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo "Variables: INSTANCES=N (instances per service for run), AMQP_URI, MONGO_URI, RABBIT_MGMT_URL (use existing servers)"

venv: ## create/update .venv (pip install -e '.[dev]' when pyproject.toml changed)
	@bash $(LOCAL)/venv.sh

infra: venv ## start RabbitMQ + FerretDB (installing/building them if needed) and apply the broker topology
	@bash $(LOCAL)/rabbitmq.sh start
	@bash $(LOCAL)/ferretdb.sh start
	@echo "[make] applying broker topology (shared.broker_admin apply --vhost /)"
	@cd $(ROOT) && $(PYENV) $(PY) -m shared.broker_admin apply --vhost / || { \
		echo "[make] ERROR: applying the broker topology failed (see above); is RabbitMQ's management API up? try: make status" >&2; exit 1; }
	@bash $(LOCAL)/rabbitmq.sh users

run: infra ## infra + start the six services (INSTANCES=N each) + run the demo
	@bash $(LOCAL)/services.sh start
	@echo "[make] running the demo (python -m shared.demo; the agency publishes as its own broker user)"
	@cd $(ROOT) && AGENCY_AMQP_URI="$$(bash $(LOCAL)/rabbitmq.sh uri lianchen.agency.SXAMR)" \
		$(PYENV) $(PY) -m shared.demo
	@echo "[make] services keep running: make status | make logs | make stop"

stop: ## stop services, FerretDB and RabbitMQ (only what these scripts started)
	@rc=0; \
	bash $(LOCAL)/services.sh stop || rc=1; \
	bash $(LOCAL)/ferretdb.sh stop || rc=1; \
	bash $(LOCAL)/rabbitmq.sh stop || rc=1; \
	exit $$rc

status: ## show what is running
	@bash $(LOCAL)/rabbitmq.sh status || true
	@bash $(LOCAL)/ferretdb.sh status || true
	@bash $(LOCAL)/services.sh status || true

test: infra ## infra, then the whole test suite except the fault-injection suite (make test-faults)
	@$(call run_pytest,tests --ignore=tests/faults)

test-faults: infra ## the fault-injection suite alone (restarts the local broker and store!)
	@$(call run_pytest,tests/faults -s)

test-unit: venv ## unit tests only (no infrastructure needed)
	@$(call run_pytest,tests/unit)

bench: infra ## infra, then every bench/*.py script (helpers without a __main__ block are skipped), sorted
	@command -v wrk >/dev/null || { echo "[make] installing wrk (load generator for bench/b20_gate.py)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	@cd $(ROOT); shopt -s nullglob; files=(bench/*.py); ran=0; \
	for f in $$(printf '%s\n' "$${files[@]}" | LC_ALL=C sort); do \
		if ! grep -Eq "^if __name__ == ['\"]__main__['\"]" "$$f"; then echo "[make] skipping $$f (no __main__ block: a helper module)"; continue; fi; \
		echo; echo "==================== $$f ===================="; \
		$(PYENV) $(PY) "$$f"; ran=$$((ran + 1)); \
	done; \
	echo; echo "[make] ran $$ran benchmark script(s)"

contracts: venv ## regenerate docs/api/openapi.json + asyncapi.json from the code (CHECK=1: only check)
	@cd $(ROOT) && $(PY) -m shared.contracts $${CHECK:+--check}

logs: ## show the last lines of every log in var/log (N=lines, FOLLOW=1 to follow)
	@cd $(ROOT); shopt -s nullglob; files=(var/log/*.log var/log/*.out); \
	if [ $${#files[@]} -eq 0 ]; then echo "[make] no logs in var/log yet"; exit 0; fi; \
	if [ -n "$${FOLLOW:-}" ]; then exec tail -n 20 -F "$${files[@]}"; else tail -n $(N) "$${files[@]}"; fi

clean: stop ## stop everything and delete var/ (logs, pid files, broker and database state) and this checkout's PostgreSQL cluster, wherever it lives
	@bash $(LOCAL)/postgres.sh clean
	rm -rf $(ROOT)/var
