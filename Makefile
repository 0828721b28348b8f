# DPE workbench. `make run` starts the product, `make test` runs every test.
# Both install what is missing first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_DATA := $(abspath ../shared/data)
# Real-data tests read the shared ADEME sample when it sits beside the checkout.
export DPE_SHARED_DATA ?= $(if $(wildcard $(SHARED_DATA)/dpe_tertiaire_sample.csv),$(SHARED_DATA),)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
# System packages the tests need (browser tests, Postgres-backed MLflow, compose validation).
APT_PACKAGES := chromium postgresql docker-compose

.PHONY: install system-deps test lint format run ingest bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# As root (CI) missing system packages are installed; elsewhere the tests that need them
# are skipped with the command to install them.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing system packages: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing system packages (their tests will be skipped): sudo apt-get install $$missing"; \
		fi; \
	fi

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

test: install system-deps lint
	$(PY) -m pytest

ingest: install
	$(PY) -m core ingest

bench: install
	$(PY) -m bench

run: install
	@$(PY) -m core status --quiet-if-data || $(PY) -m core ingest || \
		echo "Ingest failed: point DPE_SOURCE at an ADEME CSV (DPE_SOURCE=path/to/export.csv make run)."
	@echo "make run: services (MLflow, API, workbench) are wired in by the deployment issue."

clean:
	rm -rf $(VENV) var
