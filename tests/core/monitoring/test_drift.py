"""The drift statistics (PSI, chi², Kolmogorov-Smirnov and the verdict rule) on constructed
data, and the drift report's errors."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core.errors import DpeError
from core.monitoring import drift
from core.monitoring.drift import MISSING, OTHER, compare_feature, parse_time, psi
from tests.support.cli import cli_env, run_cli


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
    result = drift.volume(hourly)
    assert result["period"] == "hour"
    assert [(c["source"], c["count"]) for c in result["counts"]] == [("api", 2), ("app", 1)]
    daily = hourly.assign(time=[start, start + timedelta(days=3), start + timedelta(days=3)])
    assert drift.volume(daily)["period"] == "day"
    assert drift.volume(hourly.iloc[:0])["counts"] == []


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
    result = drift.compare_frames(
        reference, current, ["secteur_activite", "surface_utile"], settings
    )
    assert not result["secteur_activite"]["drift"]
    assert result["surface_utile"]["drift"]  # all missing now, never missing in training


# ---------------------------------------------------------------------------- command line


def test_drift_errors_are_one_line(settings):
    code, payload, stderr = run_cli("drift", env=cli_env(settings))
    assert code == 3 and payload["error"]["code"] == "not_found"  # no champion yet
    assert "no champion model" in stderr and "Traceback" not in stderr
    # Arguments are checked before anything is read.
    with pytest.raises(DpeError, match="not an ISO 8601 time: 'last tuesday'"):
        drift.drift_report(settings, since="last tuesday")
    with pytest.raises(DpeError, match="not both"):
        drift.drift_report(settings, since="2024-05-01", dataset_version="abc")


def test_rows_that_are_not_a_sample_of_buildings_are_named():
    fields = ("secteur_activite", "surface_utile")
    varied = pd.DataFrame({"secteur_activite": ["W"] * 100, "surface_utile": range(100)})
    assert drift.sample_warning(varied, fields) is None
    repeated = pd.concat([varied.head(10)] * 10, ignore_index=True)
    assert "the 100 current rows hold 10 distinct records" in drift.sample_warning(repeated, fields)
    one_mostly = pd.concat([varied.head(1)] * 60 + [varied.tail(40)], ignore_index=True)
    assert "(the most frequent 60 times)" in drift.sample_warning(one_mostly, fields)
    assert drift.sample_warning(varied.iloc[:0], fields) is None


def test_each_client_without_a_token_counts_for_a_few_rows_only():
    """Issue 24.18: 600 records from one unauthenticated client made drift on 16 features."""
    clients = ["host:10.0.0.7"] * 600 + ["host:10.0.0.8"] * 10 + ["token:abc"] * 300 + [None] * 50
    logged = pd.DataFrame({"client": clients, "row": range(len(clients))})
    judged = drift.judged_rows(logged, rows_per_host=25)
    assert judged["client"].fillna("(none)").value_counts().to_dict() == {
        "host:10.0.0.7": 25,
        "host:10.0.0.8": 10,
        "token:abc": 300,
        "(none)": 50,
    }
    assert judged["row"].is_monotonic_increasing  # in the log's order
    assert judged.equals(drift.judged_rows(logged, rows_per_host=25))  # the same each time
