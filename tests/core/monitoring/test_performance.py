"""Realised performance: the serving champion scored on the labelled records each dataset
version brings, against the range of its own back-test, and kept, newest first.

A champion (the default with the consumption) is trained and promoted on generated records.
Then two increments arrive: records labelled as before, and records where diagnosticians
moved to the « bureaux » scale. The first scores within what the back-test promised; the
second falls below its range and is flagged, its label sets covering less too.
"""

import pytest

from core.data.ingest import ingest
from core.monitoring import performance
from core.tracking import registry
from tests.support.cli import cli_env, run_cli
from tests.support.training import fast_train, home_with_data
from tooling.synth import write_csv
from tooling.synth_parts import ScaleShift

# From the first date on, 60 % of the records follow the « bureaux » scale.
MOVED = ScaleShift(share=0.6, start="2021-07-01", end="2021-07-02")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("performance")
    settings = home_with_data(root, rows=2500)
    registry.promote(settings, fast_train(settings, "sector-scale")["run_id"])
    return root, settings


@pytest.fixture(scope="module")
def scores(home):
    """Each increment ingested, then scored and kept, as a lifecycle pass does."""
    root, settings = home
    found = []
    for name, seed, shift in (("same", 21, None), ("moved", 22, MOVED)):
        source = write_csv(root / f"{name}.csv", 1200, seed=seed, scale_shift=shift)
        ingest(settings, source=source)
        found.append(performance.score_version(settings))
        performance.record(settings, found[-1])
    return found


def test_records_like_the_training_ones_score_within_the_back_test(home, scores):
    same = scores[0]
    assert same["rows"] > 500 and same["set_coverage"] == 0.9
    low = same["backtest"]["accuracy"]["min"]
    assert same["champion"]["accuracy"] >= low - 0.02
    assert same["champion"]["coverage"] >= 0.85
    assert set(same["rules"]) == {"accuracy", "macro_f1", "coverage", "mean_set_size"}
    assert same["champion"]["accuracy"] > same["rules"]["accuracy"]


def test_a_shift_of_scale_use_is_flagged(home, scores):
    same, moved = scores
    assert moved["flagged"] and not same["flagged"]
    assert "below the back-test's range" in moved["reason"]
    assert moved["champion"]["accuracy"] < moved["backtest"]["accuracy"]["min"]
    assert moved["champion"]["coverage"] < same["champion"]["coverage"]


def test_the_cli_lists_the_scores_newest_first(home, scores):
    _, settings = home
    code, payload, stderr = run_cli("performance", env=cli_env(settings))
    assert code == 0, stderr
    listed = payload["scores"]
    assert [s["dataset_version"] for s in listed] == [
        scores[1]["dataset_version"],
        scores[0]["dataset_version"],
    ]
    assert listed[0]["flagged"] and listed[0]["champion"] == pytest.approx(scores[1]["champion"])
    # Scored again (a pass resumed after a failure): kept once, not twice.
    performance.record(settings, scores[1])
    assert len(performance.history(settings)) == 2


def test_too_few_records_are_shown_not_judged(home, scores):
    _, settings = home
    strict = settings.model_copy(update={"performance_min_rows": 100_000})
    judged = performance.score_version(strict)
    assert not judged["flagged"]
    assert "not judged" in judged["reason"] and "DPE_PERFORMANCE_MIN_ROWS" in judged["reason"]
