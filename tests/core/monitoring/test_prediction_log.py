"""The prediction log's writer: batched Parquet parts in the store (a folder, or S3 over
HTTP), restarts, concurrent readers and writers, upkeep as it writes, the client and request
id columns."""

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.monitoring import prediction_log, prediction_store
from core.monitoring.prediction_log import PredictionLogger
from core.monitoring.prediction_store import read_predictions
from core.storage import Store
from tests.support.api import store_settings
from tests.support.cli import ROOT

RESULT = {"label": "C", "probabilities": {label: 1 / 7 for label in "ABCDEFG"}, "error": None}
RECORD = {"secteur_activite": "W : Administrations, banques, bureaux", "surface_utile": 250.0}


def parts(settings) -> list[str]:
    return sorted(p for p in Store(settings).list("predictions") if p.endswith(".parquet"))


def day_counts(settings) -> dict[str, int]:
    """Part files per day folder."""
    return {day: len(files) for day, files in prediction_store.day_parts(Store(settings)).items()}


def log_many(logger: PredictionLogger, n: int, source: str = "api") -> None:
    for _ in range(n):
        logger.log([RECORD], [RESULT], "3", source)


# ---------------------------------------------------------------------------- prediction log


def test_log_round_trip_keeps_inputs_outputs_and_time(settings):
    before = datetime.now(UTC)
    logger = PredictionLogger(settings)
    records = [RECORD, {"Secteur_activité": "ignored: official names are the caller's to map"}]
    results = [RESULT, {"label": None, "probabilities": None, "error": "surface_utile: > 0"}]
    logger.log(records, results, "7", "cli")
    logger.close()

    frame = read_predictions(settings)
    assert list(frame["label"].fillna("-")) == ["C", "-"]
    assert frame.loc[0, "secteur_activite"] == RECORD["secteur_activite"]
    assert frame.loc[0, "surface_utile"] == 250.0
    assert frame.loc[0, "proba_C"] == pytest.approx(1 / 7)
    assert pd.isna(frame.loc[1, "proba_C"]) and frame.loc[1, "error"] == "surface_utile: > 0"
    assert set(frame["source"]) == {"cli"} and set(frame["model_version"]) == {"7"}
    assert str(frame["time"].dt.tz) in ("UTC", "Etc/UTC")
    assert (frame["time"] >= before).all()


def test_log_takes_a_dataframe_and_rejects_an_unknown_source(settings):
    logger = PredictionLogger(settings)
    frame = pd.DataFrame([RECORD, {"surface_utile": np.nan, "secteur_activite": None}])
    logger.log(frame, [RESULT, RESULT], "1", "batch")
    with pytest.raises(ValueError, match="source"):
        logger.log([RECORD], [RESULT], "1", "somewhere")
    logger.close()
    logged = read_predictions(settings)
    assert logged["surface_utile"].isna().tolist() == [False, True]
    assert logged["secteur_activite"].isna().tolist() == [False, True]


def test_a_batch_as_columns_is_logged_as_its_records_one_by_one():
    """A large entry whose records are arrays (the API's batches) is converted array by
    array: the same rows, in the same order, as the same records given as dicts, around
    single-record entries, with missing fields, NaN, numbers in a category field, text
    in a number field and rows without probabilities."""
    rows = prediction_log.BULK_ROWS + 36
    rng = np.random.default_rng(0)
    records = [
        {
            "secteur_activite": ["M : Magasins de vente", None, 7, "  W  "][i % 4],
            "surface_utile": [250.0, None, float("nan"), 12, "12.5", "abc"][i % 6],
            "annee_construction": 1990 + i,
        }
        for i in range(rows)
    ]
    shares = rng.random((rows, 7)).tolist()
    results = [
        {"label": None, "probabilities": None, "error": "bad"}
        if i % 9 == 0
        else {"label": "C", "probabilities": dict(zip("ABCDEFG", shares[i], strict=True))}
        for i in range(rows)
    ]
    results[1]["probabilities"]["B"] = float("nan")
    columns = {
        name: np.array([record.get(name) for record in records], dtype=object)
        for name in ("secteur_activite", "surface_utile")
    }
    columns["annee_construction"] = np.array([r["annee_construction"] for r in records], float)
    moment = datetime.now(UTC)
    single = ([RECORD], [RESULT], "3", "api", moment, None, None)

    def entries(batch):
        return [single, (batch, results, 4, "api", moment, "host:a", "r1"), single]

    as_columns = prediction_log.log_table(entries(columns))
    as_dicts = prediction_log.log_table(entries(records))
    assert prediction_log._is_bulk(entries(columns)[1])
    assert as_columns.equals(as_dicts)
    frame = as_columns.to_pandas()
    assert len(frame) == rows + 2 and frame["client"].iloc[1] == "host:a"
    logged = frame["surface_utile"].iloc[1:7].tolist()  # text that is a number is read
    assert logged[0] == 250.0 and logged[3:5] == [12.0, 12.5]
    assert pd.isna(logged[1]) and pd.isna(logged[2]) and pd.isna(logged[5])
    assert frame["proba_B"].isna().sum() == frame["label"].isna().sum() + 1  # the NaN: null


def test_writes_in_batches_of_flush_rows(settings):
    logger = PredictionLogger(settings, flush_rows=100, flush_s=60)
    log_many(logger, 250)
    deadline = time.monotonic() + 10
    while len(parts(settings)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(parts(settings)) == 2  # two full batches; 50 rows still wait
    assert len(read_predictions(settings)) == 200
    logger.close()
    assert len(parts(settings)) == 3 and len(read_predictions(settings)) == 250


def test_writes_after_flush_seconds_without_being_asked(settings):
    logger = PredictionLogger(settings, flush_rows=1_000, flush_s=0.2)
    log_many(logger, 3)
    deadline = time.monotonic() + 10
    while not parts(settings) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(read_predictions(settings)) == 3
    logger.close()


def test_flush_writes_now_and_close_is_idempotent(settings):
    logger = PredictionLogger(settings, flush_rows=1_000, flush_s=60)
    log_many(logger, 5)
    logger.flush()
    assert len(read_predictions(settings)) == 5
    logger.close()
    logger.close()


def test_the_log_survives_a_restart(settings):
    first = PredictionLogger(settings)
    log_many(first, 10, source="api")
    first.close()
    # A new process (here: a new logger and a fresh read) sees the old parts and adds its own.
    second = PredictionLogger(settings)
    assert len(read_predictions(settings)) == 10
    log_many(second, 5, source="app")
    second.close()
    assert read_predictions(settings)["source"].value_counts().to_dict() == {"api": 10, "app": 5}


def test_a_reader_never_sees_a_partial_batch(settings):
    logger = PredictionLogger(settings, flush_rows=20, flush_s=60)
    stop = threading.Event()

    def write():
        while not stop.is_set():
            log_many(logger, 20)
            time.sleep(0.01)

    writer = threading.Thread(target=write)
    writer.start()
    sizes, deadline = [0], time.monotonic() + 20
    try:
        while sizes[-1] < 400 and time.monotonic() < deadline:
            sizes.append(len(read_predictions(settings)))
    finally:
        stop.set()
        writer.join()
        logger.close()
    assert all(size % 20 == 0 for size in sizes)
    assert sizes[-1] >= 400 and len(set(sizes)) > 2  # it read while parts were being added


WRITER = """
import sys
from core.config import Settings
from core.monitoring.prediction_log import PredictionLogger
logger = PredictionLogger(Settings(_env_file=None, home=sys.argv[1]), flush_rows=10)
for _ in range(200):
    logger.log([{"surface_utile": 1.0}], [{"label": "A"}], "1", sys.argv[2])
"""  # no close(): the interpreter's exit must flush what is left


def test_several_processes_write_at_once(settings):
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(settings.home), source], cwd=ROOT)
        for source in ("api", "cli")
    ]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    counts = read_predictions(settings)["source"].value_counts().to_dict()
    assert counts == {"api": 200, "cli": 200}
    # Each writer names its parts after its replica (host, PID, random id): no collision.
    replicas = {path.rsplit("-", 3)[-2] for path in parts(settings)}  # the PIDs
    assert replicas == {str(writer.pid) for writer in writers} and len(parts(settings)) == 40


def test_read_predictions_filters_on_time(settings):
    logger = PredictionLogger(settings)
    log_many(logger, 3)
    logger.flush()
    middle = datetime.now(UTC)
    log_many(logger, 2)
    logger.close()
    assert len(read_predictions(settings, since=middle)) == 2
    assert len(read_predictions(settings, until=middle)) == 3
    assert len(read_predictions(settings, since=middle + timedelta(days=1))) == 0


def test_the_logger_maintains_its_log_as_it_writes(settings):
    moment = datetime(2020, 1, 1, 8, tzinfo=UTC)  # past any retention
    table = prediction_log.log_table([([RECORD], [RESULT], "3", "api", moment, None, None)])
    Store(settings).write_bytes(
        "predictions/date=2020-01-01/part-old.parquet", prediction_store.parquet_bytes(table)
    )
    logger = PredictionLogger(settings.model_copy(update={"log_retention_days": 30}))
    log_many(logger, 1)
    logger.close()
    assert "date=2020-01-01" not in day_counts(settings)
    assert len(read_predictions(settings)) == 1


def test_read_predictions_of_one_source(settings):
    logger = PredictionLogger(settings)
    log_many(logger, 3, source="api")
    log_many(logger, 2, source="cli")
    logger.close()
    assert len(read_predictions(settings, source="cli")) == 2
    assert set(read_predictions(settings, source="api")["source"]) == {"api"}


def test_client_and_request_id_are_logged_and_filtered_on(settings):
    logger = PredictionLogger(settings)
    logger.log([RECORD], [RESULT], "3", "api", client="host:10.0.0.7", request_id="req-1")
    logger.log([RECORD] * 2, [RESULT] * 2, "3", "api", client="token:0123456789ab")
    logger.log([RECORD], [RESULT], "3", "cli")
    logger.close()
    frame = read_predictions(settings)
    assert frame["client"].fillna("-").tolist() == [
        "host:10.0.0.7",
        "token:0123456789ab",
        "token:0123456789ab",
        "-",
    ]
    assert frame["request_id"].fillna("-").tolist()[:2] == ["req-1", "-"]
    assert len(read_predictions(settings, client="token:0123456789ab")) == 2
    assert read_predictions(settings, client="host:10.0.0.7")["request_id"].tolist() == ["req-1"]


def test_the_log_on_s3_over_http(settings, s3_endpoint, s3_bucket):
    settings = store_settings(settings, s3_endpoint, s3_bucket)
    first, second = PredictionLogger(settings), PredictionLogger(settings)
    log_many(first, 3, source="api")
    log_many(second, 2, source="app")
    first.close()
    second.close()
    assert all(path.startswith("predictions/date=") for path in parts(settings))
    assert len(parts(settings)) == 2  # one part per writer, side by side
    counts = read_predictions(settings)["source"].value_counts().to_dict()
    assert counts == {"api": 3, "app": 2}
    assert not (settings.home / "predictions").exists()  # nothing on the local disk


def test_each_api_client_logs_at_most_its_quota_an_hour(settings):
    """Issue 24.18: 95,000 predictions of one client logged in 45 s."""
    logger = PredictionLogger(settings.model_copy(update={"log_client_quota": 100}))
    for _ in range(3):  # 180 rows: the first 100 logged, the second request cut at its 40th
        logger.log([RECORD] * 60, [RESULT] * 60, "3", "api", client="host:10.0.0.7")
    logger.log([RECORD] * 5, [RESULT] * 5, "3", "api", client="token:abc")  # another client
    logger.log([RECORD] * 150, [RESULT] * 150, "3", "app")  # the workbench: no quota
    logger.close()
    logged = read_predictions(settings)["client"].fillna("(none)").value_counts().to_dict()
    assert logged == {"host:10.0.0.7": 100, "token:abc": 5, "(none)": 150}
    assert logger.over_quota == 80


def test_a_quota_is_per_hour():
    now = [0.0]
    quota = prediction_log.ClientQuota(10, clock=lambda: now[0])
    assert [quota.take("host:a", 6), quota.take("host:a", 6), quota.take("host:a", 1)] == [6, 4, 0]
    now[0] = prediction_log.QUOTA_PERIOD_S
    assert quota.take("host:a", 6) == 6
