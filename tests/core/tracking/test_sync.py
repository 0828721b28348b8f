"""One champion truth: the registry alias `champion` decides and the store's manifest follows
(core.tracking.sync); a promotion that fails half-way leaves alias and manifest agreeing; the whole
path over a real MLflow server, the `sync --watch` process and the API on loopback."""

import sys
import time

import boto3
import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import PERMISSION_DENIED
from mlflow.tracking import MlflowClient
from moto.server import ThreadedMotoServer

from core.errors import DpeError, Unavailable
from core.storage import Store
from core.tracking import registry
from core.tracking.champion_store import current, read_manifest
from core.tracking.sync import sync_champion
from tests.support.api import api_server, serving, store_settings, wait_until
from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.servers import free_port, running
from tests.support.training import fast_train, home_with_data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Settings with two runs, the rule model and a small forest, not yet registered."""
    settings = home_with_data(tmp_path_factory.mktemp("sync"))
    return settings, {model: fast_train(settings, model) for model in ("rules", "rf")}


@pytest.fixture
def fresh(trained, tmp_path):
    """The trained runs under a registered model name of their own, a fresh local store."""
    settings, runs = trained
    name = f"{settings.registered_model_name}-{tmp_path.name[-12:]}".replace("_", "-")
    update = {"model_store_uri": f"file://{tmp_path}/store", "registered_model_name": name}
    return settings.model_copy(update=update), runs


def register(settings, trained_run: dict) -> str:
    """Register a run's model (no alias): its registry version."""
    registry.connect(settings)
    return str(
        mlflow.register_model(trained_run["model_uri"], settings.registered_model_name).version
    )


def state(settings) -> tuple[str | None, str | None]:
    """(the version the alias names, the version the manifest names)."""
    client = registry.connect(settings)
    manifest = current(Store(settings))
    alias = registry.champion_version(client, settings.registered_model_name)
    return alias, None if manifest is None else manifest.model_version


def test_sync_publishes_the_version_the_alias_names_and_is_idempotent(fresh):
    settings, runs = fresh
    assert sync_champion(settings).status == "no_champion"
    assert state(settings) == (None, None)
    first = registry.promote(settings, runs["rules"]["run_id"])["model_version"]
    assert sync_champion(settings).status == "in_sync"
    second = register(settings, runs["rf"])
    # Where an MLflow user moves it: the registry, not our code.
    MlflowClient(settings.tracking_uri).set_registered_model_alias(
        settings.registered_model_name, "champion", second
    )
    result = sync_champion(settings)
    assert (result.status, result.model_version) == ("published", second)
    assert state(settings) == (second, second)
    assert read_manifest(Store(settings)).run_id == runs["rf"]["run_id"]
    assert sync_champion(settings).status == "in_sync"
    # Back to the first: the manifest follows again.
    MlflowClient(settings.tracking_uri).set_registered_model_alias(
        settings.registered_model_name, "champion", first
    )
    assert sync_champion(settings).status == "published"
    assert state(settings) == (first, first)


def test_a_failed_alias_update_leaves_the_manifest_as_it_was(fresh, monkeypatch):
    settings, runs = fresh
    first = registry.promote(settings, runs["rules"]["run_id"])["model_version"]
    written = Store(settings).list()

    def refused(self, name, alias, version):
        raise MlflowException("permission denied", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refused)
    with pytest.raises(DpeError, match="permission denied"):
        registry.promote(settings, runs["rf"]["run_id"])
    monkeypatch.undo()
    assert state(settings) == (first, first)
    assert Store(settings).list() == written  # nothing of the new version was exported


def test_store_down_after_the_alias_moved_puts_the_alias_back(fresh, monkeypatch):
    settings, runs = fresh
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="sync")
        settings = store_settings(settings, f"http://127.0.0.1:{port}", "sync")
        first = registry.promote(settings, runs["rules"]["run_id"])["model_version"]

        moved = MlflowClient.set_registered_model_alias

        def moved_then_store_down(self, name, alias, version):
            moved(self, name, alias, version)
            monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved)
            server.stop()  # the object store goes away between the two steps

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", moved_then_store_down)
        with pytest.raises(Unavailable, match="unreachable"):
            registry.promote(settings, runs["rf"]["run_id"])
        client = registry.connect(settings)
        assert registry.champion_version(client, settings.registered_model_name) == first

        # The alias moved elsewhere (the MLflow UI) while the store is down: sync says so
        # and changes nothing; once the store is back, it publishes.
        second = register(settings, runs["rf"])
        client.set_registered_model_alias(settings.registered_model_name, "champion", second)
        with pytest.raises(Unavailable, match="unreachable"):
            sync_champion(settings)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()  # moto keeps its buckets in the process: the store comes back as it was
        assert state(settings) == (second, first)
        assert sync_champion(settings).status == "published"
        assert state(settings) == (second, second)
    finally:
        server.stop()


@pytest.mark.slow
def test_alias_moved_in_the_registry_reaches_the_api_without_restart(tmp_path, mlflow_server):
    settings = home_with_data(tmp_path, tracking_uri=mlflow_server, rows=800)
    rules, forest = fast_train(settings, "rules"), fast_train(settings, "rf")
    first = registry.promote(settings, rules["run_id"])["model_version"]
    env = cli_env(settings) | {"DPE_REGISTERED_MODEL_NAME": settings.registered_model_name}
    code, result, stderr = run_cli("sync", env=env)
    assert code == 0, stderr
    assert result["status"] == "in_sync" and result["model_version"] == first

    second = register(settings, forest)
    watcher = [sys.executable, "-m", "core", "sync", "--watch", "0.5"]
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url, first), 60, f"the API serving version {first}")
        # `running` waits for an HTTP answer: the API's, while the watcher starts beside it.
        with running(watcher, f"{url}/openapi.json", tmp_path / "sync.log", env=env, cwd=ROOT):
            moved = time.monotonic()
            MlflowClient(mlflow_server).set_registered_model_alias(
                settings.registered_model_name, "champion", second
            )
            wait_until(lambda: serving(url, second), 120, f"the API serving version {second}")
            print(f"alias moved -> API serving it: {time.monotonic() - moved:.1f} s")
    assert read_manifest(Store(settings)).run_id == forest["run_id"]
