"""The prediction log (batched Parquet parts, restarts, concurrent readers and writers) and
the drift statistics (PSI, chi², Kolmogorov-Smirnov and the verdict rule) on constructed data."""

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import monitoring
from core.errors import DpeError
from core.monitoring import (
    MISSING,
    OTHER,
    PredictionLogger,
    compare_feature,
    parse_time,
    psi,
    read_predictions,
)
from tests.conftest import ROOT, cli_env, run_cli

RESULT = {"label": "C", "probabilities": {label: 1 / 7 for label in "ABCDEFG"}, "error": None}
RECORD = {"secteur_activite": "W : Administrations, banques, bureaux", "surface_utile": 250.0}


def parts(settings) -> list:
    return sorted(monitoring.predictions_dir(settings).glob("date=*/part-*.parquet"))


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
from core.monitoring import PredictionLogger
logger = PredictionLogger(Settings(_env_file=None, home=sys.argv[1]), flush_rows=50)
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


def test_read_predictions_with_no_log_is_empty(settings):
    frame = read_predictions(settings)
    assert frame.empty and {"time", "label", "proba_G", "secteur_activite"} <= set(frame)


def test_parse_time():
    assert parse_time("2024-05-01T08:00:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00+02:00") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_time("2024-05-01T08:00:00Z") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    with pytest.raises(DpeError, match="ISO 8601"):
        parse_time("yesterday")


def test_volume_counts_per_hour_then_per_day():
    start = datetime(2024, 5, 1, 8, tzinfo=UTC)
    hourly = pd.DataFrame(
        {"time": [start, start + timedelta(minutes=10), start + timedelta(hours=1)]}
    ).assign(source=["api", "api", "app"])
    result = monitoring.volume(hourly)
    assert result["period"] == "hour"
    assert [(c["source"], c["count"]) for c in result["counts"]] == [("api", 2), ("app", 1)]
    daily = hourly.assign(time=[start, start + timedelta(days=3), start + timedelta(days=3)])
    assert monitoring.volume(daily)["period"] == "day"
    assert monitoring.volume(hourly.iloc[:0])["counts"] == []


# ---------------------------------------------------------------------------- drift statistics


def verdict(result: dict) -> tuple[bool, bool, bool]:
    """(PSI above the threshold, test significant, drift)."""
    return result["psi"] > 0.2, result["p_value"] < 0.01, result["drift"]


def surfaces(rng, n: int, scale: float = 1.0) -> pd.Series:
    """ADEME-like surfaces: ~75 % the 100 m² placeholder, the rest heavy-tailed, some missing."""
    values = np.where(rng.random(n) < 0.75, 100.0, rng.lognormal(5.5, 1.5, n)) * scale
    values[rng.random(n) < 0.05] = np.nan
    return pd.Series(values)


SECTORS = list("JMWRNUX")
SECTOR_SHARES = [0.3, 0.15, 0.2, 0.1, 0.1, 0.1, 0.05]


def sectors(rng, n: int, shares=SECTOR_SHARES) -> pd.Series:
    values = rng.choice(SECTORS, n, p=shares).astype(object)
    values[rng.random(n) < 0.03] = None
    return pd.Series(values)


def test_psi_values():
    same = np.array([10.0, 20.0, 30.0])
    assert psi(same, same * 7) == pytest.approx(0.0)
    # Two bins, 50/50 -> 80/20: 0.3 ln(1.6) + 0.3 ln(2.5).
    assert psi(np.array([50.0, 50.0]), np.array([80.0, 20.0])) == pytest.approx(
        0.3 * np.log(1.6) + 0.3 * np.log(2.5)
    )
    assert np.isfinite(psi(np.array([100.0, 0.0]), np.array([50.0, 50.0])))


def test_placeholder_is_a_bin_of_its_own_and_tails_stay_in_the_outer_bins(settings):
    rng = np.random.default_rng(1)
    reference = surfaces(rng, 5_000)
    current = pd.Series([100.0, 1e9, -5.0, np.nan])
    result = compare_feature(reference, current, "number", settings)
    names = [b["bin"] for b in result["bins"]]
    assert names[0] == "= 100" and names[-1] == MISSING
    shares = {b["bin"]: b["current"] for b in result["bins"]}
    assert shares["= 100"] == shares[MISSING] == 0.25
    assert shares[names[1]] == 0.25 and shares[names[-2]] == 0.25  # -5 and 1e9: outer bins
    assert sum(b["reference"] for b in result["bins"]) == pytest.approx(1.0)


def test_a_resample_is_not_flagged(settings):
    rng = np.random.default_rng(2)
    numbers = compare_feature(surfaces(rng, 3_000), surfaces(rng, 500), "number", settings)
    categories = compare_feature(sectors(rng, 3_000), sectors(rng, 500), "category", settings)
    assert numbers["test"] == "ks" and categories["test"] == "chi2"
    assert verdict(numbers) == verdict(categories) == (False, False, False)


def test_a_real_shift_is_flagged(settings):
    rng = np.random.default_rng(3)
    numbers = compare_feature(surfaces(rng, 3_000), surfaces(rng, 500, 4.0), "number", settings)
    more_m = [0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05]
    categories = compare_feature(
        sectors(rng, 3_000), sectors(rng, 500, more_m), "category", settings
    )
    assert verdict(numbers) == verdict(categories) == (True, True, True)


def test_a_significant_but_tiny_shift_on_a_large_sample_is_not_flagged(settings):
    # 200,000 rows each: a 2-point move of one category is "significant" but negligible.
    rng = np.random.default_rng(4)
    slightly = [0.28, 0.17, 0.2, 0.1, 0.1, 0.1, 0.05]
    result = compare_feature(
        sectors(rng, 200_000), sectors(rng, 200_000, slightly), "category", settings
    )
    assert verdict(result) == (False, True, False)
    numbers = pd.Series(rng.normal(0, 1, 200_000))
    result = compare_feature(
        numbers, numbers.sample(frac=1, random_state=0) + 0.05, "number", settings
    )
    assert verdict(result) == (False, True, False)


def test_a_large_psi_on_a_handful_of_rows_is_not_flagged(settings):
    rng = np.random.default_rng(5)
    result = compare_feature(sectors(rng, 3_000), pd.Series(["J", "M", "X"]), "category", settings)
    assert verdict(result) == (True, False, False)


def test_unseen_and_rare_categories_share_one_bin(settings):
    rng = np.random.default_rng(6)
    reference = pd.concat([sectors(rng, 3_000), pd.Series(["rare"] * 5)], ignore_index=True)
    current = pd.Series(["J"] * 250 + ["never seen"] * 200 + ["rare"] * 50)
    result = compare_feature(reference, current, "category", settings)
    shares = {b["bin"]: b["current"] for b in result["bins"]}
    assert "rare" not in shares and "never seen" not in shares
    assert shares[OTHER] == 0.5 and shares["J"] == 0.5
    assert result["drift"]


def test_a_number_missing_everywhere_is_tested_on_its_missing_share(settings):
    rng = np.random.default_rng(7)
    current = pd.Series([np.nan] * 200)
    result = compare_feature(surfaces(rng, 3_000), current, "number", settings)
    assert result["test"] == "chi2" and result["drift"]


def test_compare_frames_treats_an_absent_field_as_missing(settings):
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"secteur_activite": sectors(rng, 1_000), "surface_utile": 1.0})
    current = pd.DataFrame({"secteur_activite": sectors(rng, 300)})
    result = monitoring.compare_frames(
        reference, current, ["secteur_activite", "surface_utile"], settings
    )
    assert not result["secteur_activite"]["drift"]
    assert result["surface_utile"]["drift"]  # all missing now, never missing in training


# ---------------------------------------------------------------------------- command line


def test_drift_errors_are_one_line(settings):
    code, payload, stderr = run_cli("drift", env=cli_env(settings))
    assert code == 2 and payload is None
    assert "no champion model" in stderr and "Traceback" not in stderr
    # Arguments are checked before anything is read.
    with pytest.raises(DpeError, match="not an ISO 8601 time: 'last tuesday'"):
        monitoring.drift_report(settings, since="last tuesday")
    with pytest.raises(DpeError, match="not both"):
        monitoring.drift_report(settings, since="2024-05-01", dataset_version="abc")
