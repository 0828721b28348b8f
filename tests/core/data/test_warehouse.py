"""The warehouse: versions, status, the profile, dataset snapshots (local and S3), the CLI."""

import threading
import time

import pandas as pd
import pytest

from core.data import warehouse
from core.data.ingest import ingest
from core.errors import DpeError
from core.storage import Store
from tests.support.cli import cli_env, run_cli
from tests.support.servers import free_port
from tests.support.sources import (
    held_by_another_process,
    records,
    sample_records,
    state,
    write_csv,
)


@pytest.fixture
def ingested(settings, tmp_path):
    """The six sample records ingested; returns the ingest's result."""
    return ingest(settings, write_csv(sample_records(), tmp_path / "s.csv"))


def test_empty_warehouse(settings):
    assert warehouse.current_version(settings) is None
    assert warehouse.status(settings) is None
    assert warehouse.list_versions(settings) == []
    for call in (warehouse.describe, warehouse.load_dataset):
        with pytest.raises(DpeError, match="no dataset yet"):
            call(settings)
    assert not settings.duckdb_path.exists()  # reading creates nothing


def test_status_and_versions(settings, ingested, tmp_path):
    status = warehouse.status(settings)
    assert status["dataset_version"] == ingested["dataset_version"]
    assert (status["rows"], status["labelled"], status["rejected"]) == (6, 4, 3)
    assert (status["surface_placeholders"], status["conso_placeholders"]) == (1, 1)
    assert status["created_at"].endswith("+00:00")

    more = pd.concat([sample_records(), records([{"N°DPE": "T7", "Etiquette_DPE": "G"}])])
    second = ingest(settings, write_csv(more, tmp_path / "more.csv"))
    versions = warehouse.list_versions(settings)
    assert [v["version"] for v in versions] == [
        second["dataset_version"],
        ingested["dataset_version"],
    ]
    assert [v["rows"] for v in versions] == [7, 6]
    assert warehouse.current_version(settings) == second["dataset_version"]


def test_describe_profiles_the_current_version(settings, ingested):
    profile = warehouse.describe(settings)
    assert profile["dataset_version"] == ingested["dataset_version"]
    assert profile["rows"] == 6 and profile["labelled"] == 4
    assert profile["labels"] == {
        **dict.fromkeys("ABCDEFG", 0),
        "A": 1,
        "B": 1,
        "C": 1,
        "D": 1,
        "none": 1,
        "invalid": 1,
    }
    assert profile["nulls"]["n_dpe"] == 0
    assert profile["nulls"]["surface_utile"] == 1  # T6's 'abc'
    assert profile["nulls"]["n_dpe_remplace"] == 6
    assert profile["top_categories"]["secteur_activite"] == {
        "W : Administrations, banques, bureaux": 6
    }
    assert profile["placeholders"] == {"surface_utile_100": 1, "conso_kwhep_m2_an_0.1": 1}
    assert profile["rejected"] == 3
    assert profile["rejected_by_code"] == {"below_minimum": 1, "not_a_label": 1, "not_a_number": 1}


def test_load_dataset_reads_the_snapshot(settings, ingested):
    info, frame = warehouse.load_dataset(settings)
    assert info["version"] == ingested["dataset_version"]
    assert info["snapshot"] == ingested["snapshot"]
    assert sorted(frame["n_dpe"]) == ["T1", "T2", "T3", "T4", "T5", "T6"]
    assert {"reject_reason", "surface_placeholder", "conso_placeholder"} <= set(frame.columns)
    assert "row_hash" not in frame.columns
    assert frame.set_index("n_dpe").loc["T3", "annee_construction"] == 1975

    with pytest.raises(DpeError, match="unknown dataset version 'nope'"):
        warehouse.load_dataset(settings, "nope")
    Store(settings).remove(f"datasets/{info['version']}.parquet")
    with pytest.raises(DpeError, match="is missing"):
        warehouse.load_dataset(settings, info["version"])


def test_datasets_on_s3(settings, s3_endpoint, s3_bucket, tmp_path):
    on_s3 = settings.model_copy(
        update={"model_store_uri": f"s3://{s3_bucket}/dpe", "s3_endpoint_url": s3_endpoint}
    )
    result = ingest(on_s3, write_csv(sample_records(), tmp_path / "s.csv"))
    assert (
        result["snapshot"] == f"s3://{s3_bucket}/dpe/datasets/{result['dataset_version']}.parquet"
    )
    assert Store(on_s3).list("datasets") == [f"datasets/{result['dataset_version']}.parquet"]
    info, frame = warehouse.load_dataset(on_s3)
    assert len(frame) == 6 and info["version"] == result["dataset_version"]


def test_store_down_at_ingest_changes_nothing(settings, ingested, tmp_path):
    down = settings.model_copy(
        update={
            "model_store_uri": "s3://bucket/dpe",
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
            "http_retries": 0,
        }
    )
    before = state(settings)
    more = pd.concat([sample_records(), records([{"N°DPE": "T7"}])])
    with pytest.raises(DpeError, match="^object store s3://bucket/dpe/datasets/.* unreachable"):
        ingest(down, write_csv(more, tmp_path / "more.csv"))
    assert state(settings) == before


def test_readers_in_the_ingesting_process_see_the_last_commit(settings, ingested, tmp_path):
    """A page reading while an ingest runs in another thread of the same process."""
    more = pd.concat([sample_records(), records([{"N°DPE": f"N{i}"} for i in range(200)])])
    source = write_csv(more, tmp_path / "more.csv")
    seen = []
    thread = threading.Thread(target=lambda: ingest(settings, source))
    thread.start()
    while thread.is_alive():
        seen.append(warehouse.status(settings)["rows"])
        time.sleep(0.01)  # a page rerun, not a busy loop: the writer waits for a gap
    thread.join()
    assert set(seen) <= {6, 206}
    assert warehouse.status(settings)["rows"] == 206


def test_cli_describe_and_status(settings, ingested):
    env = cli_env(settings)
    code, profile, stderr = run_cli("describe", env=env)
    assert code == 0, stderr
    assert profile["dataset_version"] == ingested["dataset_version"]
    assert profile["rejected_by_code"]["below_minimum"] == 1
    code, quiet, _ = run_cli("status", "--quiet-if-data", env=env)
    assert (code, quiet) == (0, {})


def test_cli_status_without_data_exits_non_zero(settings):
    code, payload, stderr = run_cli("status", "--quiet-if-data", env=cli_env(settings))
    assert code == 3  # not found: no dataset yet
    assert payload == {
        "error": {"code": "not_found", "message": warehouse.NO_DATA, "retryable": False}
    }
    assert stderr.strip().splitlines() == [f"error: {warehouse.NO_DATA}"]


def test_readers_never_wait_for_another_process_ingest(settings, ingested, tmp_path, monkeypatch):
    """Home showed "No data yet" after 29 s while an ingest held the database: readers see
    the last commit at once, and are told an ingest is running."""
    with held_by_another_process(settings):
        started = time.monotonic()
        status = warehouse.status(settings)
        profile = warehouse.describe(settings)
        versions = warehouse.list_versions(settings)
        # A reader that waited for the lock would take LOCK_WAIT_S at least (the holder
        # keeps it 30 s); three queries on a loaded machine take a few seconds.
        assert time.monotonic() - started < warehouse.LOCK_WAIT_S
        assert status["ingest_running"] is True
        assert (
            status["dataset_version"] == ingested["dataset_version"] == profile["dataset_version"]
        )
        assert (status["rows"], profile["rejected"]) == (6, 3)
        assert [v["version"] for v in versions] == [ingested["dataset_version"]]
        # A second ingest waits for the holder, then says so without its PID.
        monkeypatch.setattr(warehouse, "LOCK_WAIT_S", 0.5)
        with pytest.raises(DpeError, match="^another ingest is running") as error:
            ingest(settings, write_csv(sample_records(), tmp_path / "again.csv"))
        assert "PID" not in str(error.value) and "\n" not in str(error.value)
    assert warehouse.status(settings)["ingest_running"] is False


def test_readers_during_an_ingest_read_the_snapshot_from_s3(
    settings, s3_endpoint, s3_bucket, tmp_path
):
    on_s3 = settings.model_copy(
        update={"model_store_uri": f"s3://{s3_bucket}/dpe", "s3_endpoint_url": s3_endpoint}
    )
    result = ingest(on_s3, write_csv(sample_records(), tmp_path / "s.csv"))
    with held_by_another_process(on_s3):
        profile = warehouse.describe(on_s3)
    assert (profile["dataset_version"], profile["rows"]) == (result["dataset_version"], 6)
