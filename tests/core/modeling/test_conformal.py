"""Label sets: the numpy sets serving computes equal the reference libraries' (MAPIE's split
conformal LAC sets, crepes' conformal classifier) on the same data, and, on generated records
whose scale use shifts over time, calibrating on the newest training records keeps the
coverage on later records where a random calibration does not."""

import math

import numpy as np
import pytest
from crepes import ConformalClassifier
from mapie.classification import SplitConformalClassifier
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import LABELS
from core.data.validation import clean
from core.errors import DpeError
from core.modeling import conformal, evaluate
from core.modeling.models import build_pipeline
from core.modeling.splits import newest_cut, record_dates, time_order
from tooling.synth import generate_records
from tooling.synth_parts import ScaleShift

FIELDS = list(FEATURE_SETS["with-consumption"].fields)


def labelled_records(n: int, seed: int, scale_shift: ScaleShift | None = None):
    """Generated labelled records, oldest first: (fields, labels, dates)."""
    cleaned = clean(generate_records(n, seed=seed, scale_shift=scale_shift))
    keep = cleaned["reject_reason"].isna() & cleaned["etiquette_dpe"].isin(LABELS)
    cleaned = cleaned[keep].reset_index(drop=True)
    order = time_order(record_dates(cleaned))
    cleaned = cleaned.iloc[order].reset_index(drop=True)
    return cleaned[FIELDS], cleaned["etiquette_dpe"].to_numpy(), record_dates(cleaned)


@pytest.fixture(scope="module")
def records():
    return labelled_records(3000, seed=5)


@pytest.fixture(scope="module")
def fitted(records):
    """The default family and a boosted one (few rounds: sets, not accuracy, are tested)."""
    X, y, _ = records
    models = {
        "sector-scale": build_pipeline("sector-scale", "with-consumption"),
        "hgb": build_pipeline("hgb", "with-consumption").set_params(classify__max_iter=20),
    }
    with threadpool_limits(1):  # OpenMP threads spin-waiting on a busy machine: 20x slower
        return {family: model.fit(X.iloc[:1000], y[:1000]) for family, model in models.items()}


def split_parts(records, model):
    """(calibration proba, their label indices, test proba) of a fitted model."""
    X, y, _ = records
    calibration = evaluate.proba_of(model, X.iloc[1000:1500])
    return (
        calibration,
        evaluate.label_indices(y[1000:1500]),
        evaluate.proba_of(model, X.iloc[1500:]),
    )


@pytest.mark.parametrize("family", ["sector-scale", "hgb"])
@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_one_threshold_for_all_gives_mapie_sets(records, fitted, family, coverage):
    """Without doubt groups (building-only models): MAPIE's split conformal LAC sets."""
    X, y, _ = records
    model = fitted[family]
    proba_cal, truth, proba_test = split_parts(records, model)
    calibration = conformal.calibrate(proba_cal, truth, doubt=None)
    ours = calibration.at(coverage).label_sets(proba_test)

    mapie = SplitConformalClassifier(
        estimator=model, confidence_level=coverage, conformity_score="lac", prefit=True
    ).conformalize(X.iloc[1000:1500], y[1000:1500])
    with threadpool_limits(1):
        _, mapie_sets = mapie.predict_set(X.iloc[1500:])
    assert list(model.classes_) == list(LABELS)
    assert np.array_equal(ours, mapie_sets[:, :, 0])
    assert len(set(ours.sum(axis=1))) > 1  # not one size for all: the records differ


@pytest.mark.parametrize("coverage", [0.8, 0.9, 0.95])
def test_doubt_groups_give_crepes_mondrian_sets(records, fitted, coverage):
    """With the consumption, records in doubt and settled ones are calibrated apart:
    crepes' Mondrian conformal classifier with those two categories gives the same sets."""
    proba_cal, truth, proba_test = split_parts(records, fitted["sector-scale"])
    calibration = conformal.calibrate(proba_cal, truth, doubt=conformal.DOUBT)
    assert min(map(len, calibration.scores.values())) >= conformal.MIN_GROUP
    ours = calibration.at(coverage).label_sets(proba_test)

    groups_cal = conformal.in_doubt(proba_cal, conformal.DOUBT)
    groups_test = conformal.in_doubt(proba_test, conformal.DOUBT)
    crepes = ConformalClassifier().fit(conformal.scores_of(proba_cal, truth), bins=groups_cal)
    crepes_sets = crepes.predict_set(
        1 - proba_test, bins=groups_test, confidence=coverage, smoothing=False
    )
    assert np.array_equal(ours, crepes_sets.astype(bool))
    # The records in doubt keep more labels than the settled ones.
    sizes = ours.sum(axis=1)
    assert sizes[groups_test].mean() > sizes[~groups_test].mean()


def test_the_predicted_label_is_always_in_the_set():
    proba = np.array([[0.05, 0.35, 0.3, 0.3, 0.0, 0.0, 0.0], [0.0, 0.0, 0.9, 0.1, 0, 0, 0]])
    thresholds = conformal.Thresholds(settled=0.5, in_doubt=0.5, doubt=None)
    kept = thresholds.label_sets(proba, predicted=np.array([1, 3]))
    assert conformal.set_labels(kept) == [["B"], ["C", "D"]]
    assert conformal.set_texts(kept).tolist() == ["B", "C|D"]


def test_a_small_group_takes_the_threshold_of_all():
    """With n scores, coverage c needs ⌈(n + 1)c⌉ <= n: 9 scores cannot promise 95 %, nor
    does a group of fewer than MIN_GROUP records get a threshold of its own."""
    calibration = conformal.Calibration({"settled": [0.1] * 9, "in_doubt": []})
    assert calibration.at(0.9).settled == pytest.approx(0.1)
    assert math.isinf(calibration.at(0.95).settled)
    assert conformal.Thresholds(math.inf, math.inf, None).label_sets(np.eye(7)).all()
    scores = {"settled": [0.01] * 100, "in_doubt": [0.6] * 5}
    assert conformal.Calibration(scores).at(0.9).in_doubt == pytest.approx(0.01)
    scores["in_doubt"] = [0.6] * 30
    assert conformal.Calibration(scores).at(0.9).in_doubt == pytest.approx(0.6)


def test_a_calibration_survives_its_json_and_a_broken_one_is_named():
    calibration = conformal.Calibration(
        {"settled": [0.3, 0.1, 0.2], "in_doubt": [0.5]}, 0.8, "2022-01-01", "2022-06-30"
    )
    again = conformal.Calibration.from_json(calibration.to_json())
    assert again.at(0.5) == calibration.at(0.5)
    assert (again.calibrated_from, again.doubt) == ("2022-01-01", 0.8)
    with pytest.raises(DpeError, match="v1/calibration.json cannot be read"):
        conformal.Calibration.from_json(b'{"method": "lac"}', "v1/calibration.json")
    with pytest.raises(DpeError, match="unknown method"):
        conformal.Calibration.from_json(b'{"method": "aps", "scores": []}')
    with pytest.raises(DpeError, match="between 0 and 1"):
        calibration.at(1.0)


def test_calibrated_on_the_newest_training_records_the_sets_cover_later_ones():
    """Scale use shifts: from 25 October 2021, 30 % of the records of every sector follow
    the « bureaux » scale. The default model, trained on the older three quarters of the
    records (mostly before the shift) and calibrated on the newest quarter of those (after
    it), is measured on the newest quarter of all. Its label alone is right for ~83 % of
    them; its sets, wider where the scale is in doubt, hold the label for at least 88 %. A
    calibration on a random quarter of the same training records (mostly before the shift)
    covers less: what time order buys."""
    shift = ScaleShift(share=0.3, start="2021-10-25", end="2021-10-26")
    X, y, dates = labelled_records(6000, seed=11, scale_shift=shift)
    cut = newest_cut(dates, np.arange(len(y)), round(0.25 * len(y)))  # no date on both sides
    past, future = np.arange(cut), np.arange(cut, len(y))
    model = build_pipeline("sector-scale", "with-consumption")
    calibration = evaluate.calibration_of(
        model, "with-consumption", X.iloc[past], y[past], dates.iloc[past]
    )
    assert calibration.calibrated_from >= shift.end  # calibrated after the shift
    fitted = clone(model).fit(X.iloc[past], y[past])
    found = evaluate.set_scores(fitted, calibration, X.iloc[future], y[future])
    assert found["accuracy"] < 0.86
    assert found["coverage"] >= 0.88
    assert 1.1 < found["mean_set_size"] < 2.0

    shuffled = np.random.default_rng(0).permutation(past)
    cut = round(0.75 * len(shuffled))
    randomly = clone(model).fit(X.iloc[shuffled[:cut]], y[shuffled[:cut]])
    random_calibration = conformal.calibrate(
        evaluate.proba_of(randomly, X.iloc[shuffled[cut:]]),
        evaluate.label_indices(y[shuffled[cut:]]),
        doubt=conformal.DOUBT,
    )
    unsorted = evaluate.set_scores(fitted, random_calibration, X.iloc[future], y[future])
    assert unsorted["coverage"] < found["coverage"] - 0.02
