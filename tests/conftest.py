"""Fixtures shared by all tests: isolated settings, the shared ADEME sample,
S3 over HTTP (moto server) and a real MLflow server, all on 127.0.0.1."""

import os
from pathlib import Path

import pytest

from core.config import Settings
from tests.support.servers import MLFLOW_SERVER_ENV, free_port, mlflow_server_command, running

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

TESTS = Path(__file__).resolve().parent
# Directories whose session fixtures train and promote models: their tests share one worker.
SHARED_TRAINING_DIRS = {"model", "pages"}
# Modules of long, independent tests (minutes each): each test is a unit of its own.
LONG_TEST_MODULES = {"test_airflow.py"}


# The longest groups (minutes), handed to the workers first so that none ends the run alone.
LONGEST_FIRST = (
    "test_airflow.py",
    "core/lifecycle/",
    "model/",
    "pages/",
    "e2e/",
    "api/test_replicas.py",
    "test_topology.py",
    "core/modeling/test_train.py",
)


def _longest_first(item: pytest.Item) -> int:
    path = item.path.relative_to(TESTS).as_posix()
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if path.startswith(prefix)), 99)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the suite on pytest-xdist workers with `--dist loadgroup`: a module's
    tests stay together (module fixtures start once), and so does a directory of
    SHARED_TRAINING_DIRS (its session fixtures train once); LONG_TEST_MODULES spread out.
    Workers take the groups in collection order: the longest come first."""
    items.sort(key=_longest_first)  # stable: each module keeps its own order
    for item in items:
        parts = item.path.relative_to(TESTS).parts
        group = parts[0] if parts[0] in SHARED_TRAINING_DIRS else "/".join(parts)
        if parts[-1] in LONG_TEST_MODULES:
            group = item.nodeid
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings with their own DPE_HOME: nothing shared with other tests or the user."""
    return Settings(
        _env_file=None,
        home=tmp_path / "home",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ADEME sample. Skipped where absent, unless DPE_REQUIRE_SHARED_DATA=1 (CI)."""
    path = os.environ.get("DPE_SHARED_DATA")
    if path and (Path(path) / "dpe_tertiaire_sample.csv").exists():
        return Path(path)
    if os.environ.get("DPE_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(f"DPE_SHARED_DATA={path!r} has no dpe_tertiaire_sample.csv, and CI requires it")
    pytest.skip("real ADEME sample not present (set DPE_SHARED_DATA=../shared/data)")


@pytest.fixture(scope="session")
def sample_csv(shared_data) -> Path:
    return shared_data / "dpe_tertiaire_sample.csv"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server over HTTP on loopback; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, request) -> str:
    """A fresh bucket for one test; yields its name."""
    import boto3

    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-[]") + "-b"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` process on loopback over SQLite; yields its tracking URI."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = mlflow_server_command(home, port)
    log_path = home / "server.log"
    with running(command, f"{url}/health", log_path, env=MLFLOW_SERVER_ENV, timeout_s=90):
        yield url
