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
# System packages the tests need (browser tests, Postgres-backed MLflow, compose validation,
# building and running the product's image: podman with runc, debootstrap for its base).
APT_PACKAGES := chromium postgresql docker-compose podman runc debootstrap

.PHONY: install lock system-deps test lint format docs run ingest bench clean

install: $(VENV)/.installed

# Everything installed comes from uv.lock, with its hashes (`uv sync --locked` fails when the
# lock no longer matches pyproject.toml: run `make lock`). uv itself is bootstrapped from
# requirements-bootstrap.txt (hashes too); the lock then keeps it in the venv. The project is
# installed editable, with its console script `dpe`.
# Bytecode is compiled at install (--compile-bytecode, and compileall for our own packages):
# where PYTHONDONTWRITEBYTECODE is set, as on these machines, Python would otherwise compile
# every module it imports from source in every process: 4 s more for `dpe --help`, twice the
# API's start-up.
UV := UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(VENV)/bin/uv
OUR_PACKAGES := core api ui views tooling bench tests dags app.py workbench_server.py
$(VENV)/.installed: pyproject.toml uv.lock requirements-bootstrap.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(PY) -m pip install -q --require-hashes --no-deps -r requirements-bootstrap.txt
	$(UV) sync --locked --compile-bytecode --extra dev --extra docs
	$(PY) -m compileall -q -j 0 $(OUR_PACKAGES) >/dev/null
	touch $@

# Refresh the locks after a change of pins in pyproject.toml, requirements-airflow.in,
# requirements-checkov.in or requirements-mlserver.in.
AIRFLOW_LOCK := $(VENV)/bin/uv pip compile requirements-airflow.in --generate-hashes \
	--python-version 3.11 --python-platform linux -q -o requirements-airflow.txt
CHECKOV_LOCK := $(VENV)/bin/uv pip compile requirements-checkov.in --generate-hashes \
	--python-version 3.11 --python-platform linux -q -o requirements-checkov.txt
MLSERVER_LOCK := $(VENV)/bin/uv pip compile requirements-mlserver.in --generate-hashes \
	--python-version 3.11 --python-platform linux -q -o requirements-mlserver.txt
lock:
	test -x $(VENV)/bin/uv || { $(PYTHON) -m venv $(VENV) && \
		$(PY) -m pip install -q --require-hashes --no-deps -r requirements-bootstrap.txt; }
	$(UV) lock
	$(AIRFLOW_LOCK)
	$(CHECKOV_LOCK)
	$(MLSERVER_LOCK)
	version=$$(sed -n 's/^ *"uv==\([^"]*\)".*/\1/p' pyproject.toml); \
	echo "uv==$$version" | $(VENV)/bin/uv pip compile - --generate-hashes --no-header \
		--python-version 3.11 --python-platform linux -q -o requirements-bootstrap.txt

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

# Style, types (mypy, configured in pyproject.toml), the architecture (import-linter contracts
# in pyproject.toml: layers of core/, no import cycle, what serving and the API may import),
# and the locks: uv.lock matches pyproject.toml, the Airflow lock its requirements.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(UV) lock --check
	$(PY) -m pytest -q -p no:cacheprovider tests/test_locks.py

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# The suite runs on TEST_WORKERS pytest-xdist workers: most of its time is spent waiting on
# servers it starts (MLflow, uvicorn, Streamlit, chromium), which overlaps well even on two
# cores; tests/conftest.py keeps each module, and the directories that train, on one worker.
# One OpenMP thread per process: several workers' threads spin-waiting for the same two cores
# make a boosted fit many times slower.
# The image test (tests/test_image.py: a base from Debian packages, the image built with
# podman, its containers run; minutes, mostly downloads and disk) runs in a second pytest
# beside the suite: the two overlap, so `make test` takes the longer of them, not their sum.
TEST_WORKERS ?= 4
test: install airflow-install checkov-install system-deps lint
	@log=$$(mktemp); \
	$(PY) -m pytest -q -s -p no:cacheprovider tests/test_image.py >$$log 2>&1 & image=$$!; \
	OMP_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=25 \
		--ignore=tests/test_image.py; suite=$$?; \
	wait $$image; images=$$?; \
	echo "== tests/test_image.py, run beside the suite:"; cat $$log; rm -f $$log; \
	test $$suite = 0 && test $$images = 0

# The documentation site (mkdocs.yml, docs/) into site/: strict (a broken link or a docstring
# mkdocstrings cannot read fails it) and offline (no plugin fetches, no web font, no CDN). The
# reference pages are generated from the code (tooling/docs_site.py). `make test` builds it
# too (tests/test_docs.py), with the network closed where the machine allows.
docs: install
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# The deployment files alone: Dockerfile (hadolint), docker-compose.yml (docker-compose v1,
# dclint), the Kubernetes overlays (schemas), Terraform (fmt, names), checkov over all four.
.PHONY: lint-deploy image-test
lint-deploy: install checkov-install system-deps
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" \
		tests/test_deploy.py tests/test_k8s.py tests/test_terraform.py tests/test_checkov.py

# The product's image built from the Dockerfile with podman and run (API and workbench):
# prints its size, build time, /readyz, a prediction, the user id and the read-only root.
image-test: install system-deps
	$(PY) -m pytest -q -s -p no:cacheprovider tests/test_image.py

ingest: install
	$(PY) -m core ingest

# Each benchmark writes its section of docs/benchmarks.md; run them on a quiet machine.
# bench_api serves the champion with MLServer too, from its own environment.
BENCHES := ingest train api metrics explore monitoring model_quality
bench: install mlserver-install
	@for name in $(BENCHES); do echo "== bench/bench_$$name.py"; $(PY) -m bench.bench_$$name || exit 1; done
	@echo "== bench/bench_api.py --model sector-scale"; $(PY) -m bench.bench_api --model sector-scale

# `make run`: DPE_HOME and the ports as core.config.Settings resolves them (environment, then
# .env, then defaults), printed as shell assignments; ingest when there is no dataset yet (no
# DuckDB file: no need to ask `core status`, which takes seconds to import); then
# honcho runs the Procfile (MLflow, API, workbench) and stops all three on Ctrl-C (its exit code
# 130 then is a normal stop). Settings has already read .env, so honcho reads no env file (its
# .env would override the environment).
RUN_SETTINGS := from shlex import quote; from core.config import get_settings; s = get_settings(); \
	print(f"DPE_HOME={quote(str(s.home.resolve()))} DPE_MLFLOW_PORT={s.mlflow_port}" \
	f" DPE_API_PORT={s.api_port} DPE_UI_PORT={s.ui_port} MLFLOW_TRACKING_URI={quote(s.tracking_uri)}" \
	f" duckdb={quote(str(s.duckdb_path.resolve()))}")

run: install
	@settings="$$($(PY) -c '$(RUN_SETTINGS)')" || exit 1; eval "$$settings"; \
	export DPE_HOME DPE_MLFLOW_PORT DPE_API_PORT DPE_UI_PORT MLFLOW_TRACKING_URI; \
	mkdir -p "$$DPE_HOME/mlflow/artifacts"; \
	if [ ! -f "$$duckdb" ] || ! $(PY) -m core status --quiet-if-data 2>/dev/null; then \
		echo "make run: no data in $$DPE_HOME yet, ingesting DPE_SOURCE"; \
		$(PY) -m core ingest || printf '%s\n' \
			"make run: ingest failed. To load an ADEME CSV export instead of the ADEME API:" \
			"  DPE_SOURCE=/path/to/dpe_tertiaire.csv make run" \
			"  (or later: $(PY) -m core ingest --source /path/to/file.csv)" \
			"Starting the workbench without data."; \
	fi; \
	printf '%s\n' "make run: starting, Ctrl-C stops all four (MLflow, API, workbench, champion sync)" \
		"  MLflow UI  http://127.0.0.1:$$DPE_MLFLOW_PORT" \
		"  API        http://127.0.0.1:$$DPE_API_PORT  (docs: /docs)" \
		"  Workbench  http://127.0.0.1:$$DPE_UI_PORT"; \
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho start --env /dev/null || [ $$? = 130 ]

# checkov's own environment (requirements-checkov.txt, hashes checked): tests/test_checkov.py
# scans deploy/ with it.
CHECKOV_VENV ?= .venv-checkov
.PHONY: checkov-install
checkov-install: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt $(VENV)/.installed
	$(VENV)/bin/uv venv -q --allow-existing --python $(PYTHON) $(CHECKOV_VENV)
	$(VENV)/bin/uv pip sync -q --compile-bytecode --require-hashes -p $(CHECKOV_VENV) requirements-checkov.txt
	touch $@

# MLServer's own environment (requirements-mlserver.txt, hashes checked; its fastapi pin is
# below ours): `python -m bench.bench_api` serves the champion with it beside our API.
MLSERVER_VENV ?= .venv-mlserver
.PHONY: mlserver-install
mlserver-install: $(MLSERVER_VENV)/.installed

$(MLSERVER_VENV)/.installed: requirements-mlserver.txt $(VENV)/.installed
	$(VENV)/bin/uv venv -q --allow-existing --python $(PYTHON) $(MLSERVER_VENV)
	$(VENV)/bin/uv pip sync -q --compile-bytecode --require-hashes -p $(MLSERVER_VENV) requirements-mlserver.txt
	touch $@

# --- Lifecycle on Airflow (dags/dpe_lifecycle.py) ----------------------------------------
# Airflow's own environment: its FastAPI pin conflicts with ours. Its tasks run our code in
# $(VENV). AIRFLOW_HOME lives under DPE_HOME; SQLite, no examples, 2 tasks at a time (2 cores).
# Airflow's commands start one another by name: its venv's bin/ comes first on PATH.
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_SETTINGS := from shlex import quote; from core.config import get_settings; s = get_settings(); \
	print(f"DPE_HOME={quote(str(s.home.resolve()))} MLFLOW_TRACKING_URI={quote(s.tracking_uri)}" \
	f" DPE_HOST={quote(s.host)} DPE_AIRFLOW_PORT={s.airflow_port}")
AIRFLOW_ENV := export DPE_HOME MLFLOW_TRACKING_URI; \
	export PATH="$(abspath $(AIRFLOW_VENV))/bin:$$PATH" \
	AIRFLOW_HOME="$$DPE_HOME/airflow" AIRFLOW__CORE__DAGS_FOLDER="$(abspath dags)" \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__PARALLELISM=2 \
	AIRFLOW__CORE__EXECUTOR=LocalExecutor AIRFLOW__API__WORKERS=1 \
	AIRFLOW__API__HOST="$$DPE_HOST" AIRFLOW__API__PORT="$$DPE_AIRFLOW_PORT" \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://$$DPE_HOST:$$DPE_AIRFLOW_PORT/execution/" \
	DPE_PROJECT_PYTHON="$(abspath $(PY))"

.PHONY: airflow-install airflow pipeline
airflow-install: $(AIRFLOW_VENV)/.installed

$(AIRFLOW_VENV)/.installed: requirements-airflow.txt $(VENV)/.installed
	$(VENV)/bin/uv venv -q --allow-existing --python $(PYTHON) $(AIRFLOW_VENV)
	$(VENV)/bin/uv pip sync -q --compile-bytecode --require-hashes -p $(AIRFLOW_VENV) requirements-airflow.txt
	touch $@

# The Airflow UI on loopback; every local user is admin (it listens on 127.0.0.1 only).
# Not `airflow standalone`: its scheduler and triggerer serve logs on 0.0.0.0 (8793, 8794).
# honcho runs Procfile.airflow's four processes (no log server: the UI reads the log files
# in AIRFLOW_HOME) and stops them all on Ctrl-C.
airflow: install airflow-install
	@settings="$$($(PY) -c '$(AIRFLOW_SETTINGS)')" || exit 1; eval "$$settings"; $(AIRFLOW_ENV); \
	export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True; \
	echo "make airflow: preparing Airflow's database in $$AIRFLOW_HOME"; \
	airflow db migrate >/dev/null || exit 1; \
	echo "make airflow: Airflow UI on http://$$DPE_HOST:$$DPE_AIRFLOW_PORT (DAG dpe_lifecycle, daily; Ctrl-C stops it)"; \
	$(VENV)/bin/honcho -f Procfile.airflow start --env /dev/null || [ $$? = 130 ]

# One lifecycle pass through Airflow (no scheduler needed): `airflow dags test`, then the
# pass's decision (or why it failed) in plain words. The source: DPE_PIPELINE_SOURCE, else
# DPE_SOURCE (the ADEME API by default). No retries: a failed pass is continued by the next.
pipeline: install airflow-install
	@settings="$$($(PY) -c '$(AIRFLOW_SETTINGS)')" || exit 1; eval "$$settings"; $(AIRFLOW_ENV); \
	airflow db migrate >/dev/null || exit 1; \
	DPE_AIRFLOW_RETRIES=0 airflow dags test dpe_lifecycle; status=$$?; \
	echo "make pipeline: the pass, as recorded:"; \
	$(PY) -m core pipeline --last; exit $$status

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) $(CHECKOV_VENV) $(MLSERVER_VENV) var
