"""Model quality on later records: every family x {random split, time split, back-test}.

Ingests the real ADEME sample into a fresh DPE_HOME, then, for each family with its
default hyper-parameters (no search: the back-test searches nothing either, so the three
columns compare like with like), scores accuracy and macro-F1 on a stratified random 20 %
test split, on the newest 20 % (the time split `train` uses by default), and the mean of
the rolling-origin back-test (`core.modeling.backtest`, 4 windows over the newest half).
Writes the "## Model quality" section of docs/benchmarks.md; the README's table comes from it.

    .venv/bin/python -m bench.bench_model_quality [--source CSV]
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from bench.results import write_section
from core.config import Settings
from core.data import warehouse
from core.data.ingest import ingest
from core.modeling.backtest import WINDOWS, fit_and_score, window_bounds
from core.modeling.models import build_pipeline
from core.modeling.splits import split_rows, time_order
from core.modeling.train import SEED, TEST_SIZE, labelled_dates, labelled_rows
from tests.support.cli import ROOT

SECTION = "## Model quality"
SAMPLE = ROOT.parent / "shared" / "data" / "dpe_tertiaire_sample.csv"
FAMILIES = {
    "with-consumption": ("rules", "sector-scale", "scale", "logreg", "rf", "hgb"),
    "building-only": ("rules", "logreg", "rf", "hgb"),
}


def scores(frame, feature_set: str, family: str) -> dict[str, tuple[float, float]]:
    """(accuracy, macro-F1) of `family` on each split and the back-test mean."""
    X, y = labelled_rows(frame, feature_set)
    dates = labelled_dates(frame)
    found = {}
    for kind in ("random", "time"):
        held = split_rows(X, y, dates, kind, TEST_SIZE, SEED)
        model = build_pipeline(family, feature_set, SEED).fit(held.X_train, held.y_train)
        predicted = model.predict(held.X_test)
        found[kind] = (
            float(accuracy_score(held.y_test, predicted)),
            float(f1_score(held.y_test, predicted, average="macro", zero_division=0)),
        )
    order = time_order(dates)
    windows = [
        fit_and_score(build_pipeline(family, feature_set, SEED), X, y, order[:a], order[a:b])
        for a, b in window_bounds(dates, WINDOWS)
    ]
    found["backtest"] = tuple(
        float(np.mean([window[name] for window in windows])) for name in ("accuracy", "macro_f1")
    )
    return found


def table(frame) -> str:
    lines = [
        "| features | family | random split acc / macro-F1 | time split acc / macro-F1 "
        "| back-test mean acc / macro-F1 |",
        "|---|---|---|---|---|",
    ]
    for feature_set, families in FAMILIES.items():
        for family in families:
            found = scores(frame, feature_set, family)
            cells = [f"{a:.3f} / {f:.3f}" for a, f in found.values()]
            lines.append(f"| {feature_set} | {family} | {' | '.join(cells)} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, threadpool_limits(1):
        settings = Settings(_env_file=None, home=Path(folder) / "home")
        ingest(settings, source=args.source, progress=False)
        info, frame = warehouse.load_dataset(settings)
        text = table(frame)
    write_section(
        SECTION,
        f"{SECTION}\n\n`python -m bench.bench_model_quality` on `{args.source.name}` (dataset "
        f"`{info['version']}`), default hyper-parameters, seed {SEED}; time split = the newest "
        f"{TEST_SIZE:.0%} by diagnostic date; back-test = mean of {WINDOWS} rolling-origin "
        f"windows over the newest half. With `building-only`, `rules` is the majority label.\n\n"
        f"{text}\n",
    )


if __name__ == "__main__":
    main()
