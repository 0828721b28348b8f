"""The product's image, built from the repository's Dockerfile with podman and run
(`make image-test` prints the figures: add -s to pytest to see them).

The API container serves a champion from a store volume: `/readyz` 200 and the same
prediction as the library outside the container; the workbench container answers
`/_stcore/health`; both run as the image's unprivileged user on a read-only root filesystem
with every capability dropped. Where no container registry is reachable (here: only PyPI,
Debian and npm are), the base is a stand-in made from Debian packages (tests/support/
containers.py). Skipped, with the reason, where podman cannot run containers.

The containers use the host's network (no bridge to set up), so each process is started with
`dpe api` / `dpe workbench` on 127.0.0.1 and a free port (DPE_HOST, DPE_API_PORT, DPE_UI_PORT),
as the installed package's own commands.
"""

import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.config import Settings
from core.serving.champion import load_champion
from tests.support.champion import probabilities, publish_champion, sample_records, train_pipeline
from tests.support.cli import ROOT
from tests.support.containers import (
    STANDIN_BASE,
    ULIMITS,
    Podman,
    build_image,
    build_standin_base,
    usable_podman,
)
from tests.support.servers import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

IMAGE = "localhost/dpe-workbench:image-test"
USER_ID = 10001  # the Dockerfile's unprivileged user
RECORDS = 20


def report(line: str) -> None:
    print(f"image-test: {line}", flush=True)


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    podman = usable_podman(tmp_path_factory.mktemp("podman"))
    yield podman
    podman.reset()


@pytest.fixture(scope="module")
def image(podman, tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp("image-build")
    base_s = build_standin_base(podman, work)
    version = podman("run", "--rm", *ULIMITS, STANDIN_BASE, "python", "--version").stdout
    report(
        f"base: stand-in {STANDIN_BASE} (debootstrap bookworm, {version.strip()}) in "
        f"{base_s:.0f} s: no container registry is reachable here for the Dockerfile's "
        "pinned python:3.11-slim-bookworm"
    )
    build_s, steps = build_image(podman, ROOT, "Dockerfile", IMAGE, STANDIN_BASE, work)
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    report(f"image {IMAGE}: {size / 1e6:.0f} MB, built in {build_s:.0f} s (cache empty)")
    for step, seconds in sorted(steps, key=lambda s: -s[1])[:4]:
        report(f"  {seconds:5.0f} s  {step}")
    return IMAGE


@pytest.fixture
def run_container(podman, tmp_path):
    """Start a container as the deployment runs it: read-only root (a private /tmp is the
    only scratch space), no capability, no privilege escalation, DPE_HOME on a volume."""
    names = []

    def start(command: list[str], env: dict[str, str], volumes: dict[Path, str]) -> str:
        name = f"dpe-image-test-{len(names)}-{tmp_path.name[-12:]}".lower()
        home = tmp_path / f"home-{len(names)}"
        home.mkdir()
        mounts = {home: "/data", **volumes}
        for host in mounts:
            shutil.chown(host, USER_ID, USER_ID)
        args = ["run", "--detach", "--name", name, "--network", "host", *ULIMITS]
        args += ["--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp:rw,size=256m"]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        for host, inside in mounts.items():
            args += ["--volume", f"{host}:{inside}"]
        for key, value in {"DPE_HOST": "127.0.0.1", **env}.items():
            args += ["--env", f"{key}={value}"]
        podman(*args, IMAGE, *command)
        names.append(name)
        return name

    yield start
    for name in names:
        podman("rm", "--force", "--time", "5", name, check=False)


def wait_for(url: str, podman: Podman, name: str, timeout_s: float = 180) -> httpx.Response:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            answer = httpx.get(url, timeout=5)
            if answer.status_code == 200:
                report(f"{url} 200 after {time.monotonic() - started:.0f} s: {answer.text[:120]}")
                return answer
        except httpx.HTTPError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name, check=False).stdout
        if state.strip() not in ("running", "created"):
            break
        time.sleep(1)
    logs = podman("logs", name, check=False)
    pytest.fail(f"{url} not 200 after {timeout_s:.0f} s:\n{(logs.stdout + logs.stderr)[-3000:]}")


def assert_unprivileged_and_read_only(podman: Podman, name: str) -> None:
    uid = podman("exec", name, "id", "-u").stdout.strip()
    assert uid == str(USER_ID)
    read_only = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name).stdout
    assert read_only.strip() == "true"
    for path in ("/app/probe", "/opt/dpe/probe", "/etc/probe"):
        attempt = podman("exec", name, "touch", path, check=False)
        assert attempt.returncode != 0 and "Read-only file system" in attempt.stderr, path
    report(f"{name}: uid {uid} (non-root), root filesystem read-only (touch /app: refused)")


def test_api_container_serves_the_champion_as_outside(image, podman, run_container, tmp_path):
    store = tmp_path / "store"
    settings = Settings(
        _env_file=None, home=tmp_path / "outside", model_store_uri=f"file://{store}"
    )
    manifest = publish_champion(settings, train_pipeline(n_estimators=20), version=1)
    records = sample_records(RECORDS, seed=7)
    expected = load_champion(settings).predict(records)

    port = free_port()
    env = {"DPE_MODEL_STORE_URI": "file:///store", "DPE_API_PORT": str(port)}
    name = run_container(["dpe", "api"], env, {store: "/store"})
    ready = wait_for(f"http://127.0.0.1:{port}/readyz", podman, name)
    assert ready.json()["model_version"] == manifest.model_version

    answer = httpx.post(f"http://127.0.0.1:{port}/predict", json={"records": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    served = answer.json()["predictions"]
    assert [p["label"] for p in served] == [p["label"] for p in expected]
    np.testing.assert_allclose(probabilities(served), probabilities(expected), atol=1e-9)
    first = served[0]
    report(
        f"POST /predict in the container: {len(served)} records, the same labels and "
        f"probabilities as outside (first: {first['label']}, "
        f"p={max(first['probabilities'].values()):.3f})"
    )
    assert_unprivileged_and_read_only(podman, name)


def test_workbench_container_answers_its_health_check(image, podman, run_container, tmp_path):
    port = free_port()
    name = run_container(["dpe", "workbench"], {"DPE_UI_PORT": str(port)}, {})
    health = wait_for(f"http://127.0.0.1:{port}/_stcore/health", podman, name)
    assert health.text == "ok"
    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert_unprivileged_and_read_only(podman, name)
