# One image for the DPE workbench's processes: the API (default command), the Streamlit workbench
# and the MLflow server (docker-compose.yml picks the command). Build: docker build -t dpe-workbench .
# The base is pinned by exact tag and by digest: update both together (or pass another base
# with --build-arg PYTHON_IMAGE=...: tests/test_image.py builds on a stand-in made from Debian).
# checkov:skip=CKV_DOCKER_7:FROM names ARG PYTHON_IMAGE, pinned below by exact tag and digest
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# --- build: the locked dependencies (uv.lock, hashes checked), then the package itself ------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/opt/dpe \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
COPY requirements-bootstrap.txt pyproject.toml uv.lock ./
RUN pip install --require-hashes --no-deps -r requirements-bootstrap.txt \
    && uv sync --locked --no-install-project
COPY . .
RUN uv sync --locked --no-editable

# --- runtime: the virtualenv alone, run by an unprivileged user ------------------------------
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/dpe/bin:$PATH \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true \
    DPE_HOME=/data \
    DPE_HEALTHCHECK_URL=http://127.0.0.1:8000/health

# An unprivileged user; DPE_HOME is its only writable place (volumes in docker-compose.yml).
RUN groupadd --system --gid 10001 dpe \
    && useradd --system --uid 10001 --gid dpe --create-home --home-dir /home/dpe dpe \
    && mkdir -p /data \
    && chown -R dpe:dpe /data

COPY --from=build /opt/dpe /opt/dpe
# `streamlit run workbench_server.py` from /app: Streamlit reads .streamlit/config.toml from
# its working directory; workbench_server.py serves app.py behind the login gate (ui/gate.py),
# and app.py finds its pages in the installed package (ui/frame.py).
WORKDIR /app
COPY .streamlit/config.toml .streamlit/config.toml
COPY app.py workbench_server.py ./

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000 8501 5000

# The process's own health URL (API /health, Streamlit /_stcore/health, MLflow /health).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['DPE_HEALTHCHECK_URL'], timeout=4)"]

CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers"]
