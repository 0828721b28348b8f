"""Model quality on later records, with label sets: every family x {time split, back-test}.

Ingests the real ADEME sample into a fresh DPE_HOME, then, for each family with its default
hyper-parameters (no search, as the back-test inside `train` uses the chosen ones), does what
`train` does: on the time split (trained on the older 80 %, tested on the newest 20 %) and on
each rolling-origin back-test window (`core.modeling.evaluate.window_scores`, 4 windows over
the newest half), the model is calibrated on the newest quarter of its training records by a
copy fitted on the older ones (`core.modeling.conformal`), fitted on all of them, and scored:
accuracy, macro-F1, and its label sets' coverage and mean size at 0.90. Also the seconds the
back-test takes (what it adds to a `train`). Writes the "## Model quality" section of
docs/benchmarks.md; the README's table comes from it.

`--features` and `--families` measure some rows only (printed, docs/benchmarks.md left as it
is); `quantile-scale` and `quantile-scale-balanced` are the building-only experiment of
`bench.quantile_scale`, trained with the consumption as its target, predicting without it.

    .venv/bin/python -m bench.bench_model_quality [--source CSV] [--features building-only]
        [--families hgb quantile-scale]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from bench.quantile_scale import QuantileScaleModel
from bench.results import write_section
from core.config import Settings
from core.data import warehouse
from core.data.ingest import ingest
from core.modeling import evaluate
from core.modeling.models import build_pipeline
from core.modeling.splits import WINDOWS, split_rows
from core.modeling.train import SEED, TEST_SIZE, labelled_dates, labelled_rows
from tests.support.cli import ROOT

SECTION = "## Model quality"
SAMPLE = ROOT.parent / "shared" / "data" / "dpe_tertiaire_sample.csv"
FAMILIES = {
    "with-consumption": ("rules", "sector-scale", "scale", "logreg", "rf", "hgb"),
    "building-only": ("rules", "logreg", "rf", "hgb", "quantile-scale", "quantile-scale-balanced"),
}
EXPERIMENTS = {  # building-only families that learn from the consumption, never read it
    "quantile-scale": {"balanced": False},
    "quantile-scale-balanced": {"balanced": True},
}
NAMES = ("accuracy", "macro_f1", "coverage", "mean_set_size")


def scores(frame, feature_set: str, family: str) -> dict:
    """The time split's scores, each back-test window's, and the back-test's seconds."""
    X, y = labelled_rows(frame, feature_set)
    dates = labelled_dates(frame)
    if family in EXPERIMENTS:  # the same rows, with the consumption as training target
        X, _ = labelled_rows(frame, "with-consumption")
        model = QuantileScaleModel(**EXPERIMENTS[family], random_state=SEED)
    else:
        model = build_pipeline(family, feature_set, SEED)
    held = split_rows(X, y, dates, "time", TEST_SIZE, SEED)
    calibration = evaluate.calibration_of(
        model, feature_set, held.X_train, held.y_train, held.dates_train
    )
    fitted = clone(model).fit(held.X_train, held.y_train)
    time_split = evaluate.set_scores(fitted, calibration, held.X_test, held.y_test)
    started = time.perf_counter()
    windows = evaluate.window_scores(model, feature_set, X, y, dates, WINDOWS)
    return {"time": time_split, "windows": windows, "seconds": time.perf_counter() - started}


def row(feature_set: str, family: str, found: dict) -> str:
    split, windows = found["time"], found["windows"]

    def spread(name: str) -> str:
        values = [w[name] for w in windows]
        return f"{np.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})"

    shown = "majority label" if family == "rules" and feature_set == "building-only" else family
    return (
        f"| {feature_set} | {shown} | {split['accuracy']:.3f} / {split['macro_f1']:.3f} | "
        f"{spread('accuracy')} | {spread('macro_f1')} | {spread('coverage')} | "
        f"{spread('mean_set_size')} | {split['coverage']:.3f} / {split['mean_set_size']:.2f} | "
        f"{found['seconds']:.0f} |"
    )


def table(frame, feature_sets=tuple(FAMILIES), families=None) -> str:
    lines = [
        "| features | family | time split acc / macro-F1 | back-test accuracy | back-test "
        "macro-F1 | back-test coverage at 0.90 | back-test mean set size | time split "
        "coverage / set size | back-test s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for feature_set in feature_sets:
        for family in families or FAMILIES[feature_set]:
            lines.append(row(feature_set, family, scores(frame, feature_set, family)))
            print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLE)
    parser.add_argument(
        "--features",
        nargs="+",
        choices=tuple(FAMILIES),
        default=tuple(FAMILIES),
        help="the feature sets to measure (default: both); any restriction only prints rows",
    )
    parser.add_argument(
        "--families",
        nargs="+",
        help="the families to measure (default: each set's); "
        f"building-only experiments: {', '.join(EXPERIMENTS)}; only prints rows",
    )
    args = parser.parse_args()
    restricted = args.families is not None or tuple(args.features) != tuple(FAMILIES)
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        settings = Settings(_env_file=None, home=Path(folder) / "home")
        ingest(settings, source=args.source, progress=False)
        info, frame = warehouse.load_dataset(settings)
        text = table(frame, args.features, args.families)
    if restricted:
        return
    write_section(
        SECTION,
        f"{SECTION}\n\n`python -m bench.bench_model_quality` on `{args.source.name}` (dataset "
        f"`{info['version']}`), default hyper-parameters, seed {SEED}; time split = the newest "
        f"{TEST_SIZE:.0%} by diagnostic date; back-test = mean (min–max) of {WINDOWS} "
        "rolling-origin windows over the newest half. Each model is calibrated on the newest "
        "quarter of its training records by a copy fitted on the older ones, then fitted on "
        "all of them; label sets at coverage 0.90 (with the consumption, records in doubt and "
        "settled ones calibrated apart). `back-test s`: the seconds the back-test takes, what "
        "it adds to a `train` run. With `building-only`, `rules` is the majority label. "
        "`quantile-scale` rows: the building-only experiment of `bench/quantile_scale.py` (a "
        "predicted distribution of the consumption through the sector's scales), not a family "
        "`train` builds.\n\n"
        f"{text}\n",
    )


if __name__ == "__main__":
    main()
