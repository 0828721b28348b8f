"""Training benchmark: the default search of every family on the real ADEME sample.

Ingests the sample into a fresh DPE_HOME (MLflow over SQLite there), then runs
`python -m core train --features F --model M --json` for each family and feature set in
a child process, as a user would, and records its wall time and the test-split figures.
Also measures how often the best with-consumption model gets a *better* label as the
consumption rises (monotonicity).
Writes the "## Training" section of docs/benchmarks.md. Target: each default search
< 60 s on a 2-core machine.

    .venv/bin/python bench/bench_train.py [--source CSV]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `core` importable

import mlflow  # noqa: E402
import numpy as np  # noqa: E402

from core import warehouse  # noqa: E402
from core.config import Settings  # noqa: E402
from core.ingest import ingest  # noqa: E402
from core.train import labelled_rows  # noqa: E402

RESULTS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Training"
SAMPLE = ROOT.parent / "shared" / "data" / "dpe_tertiaire_sample.csv"
TARGET_S = 60.0
RUNS = [
    ("with-consumption", "rules"),
    ("with-consumption", "logreg"),
    ("with-consumption", "rf"),
    ("with-consumption", "hgb"),
    ("building-only", "rules"),
    ("building-only", "logreg"),
    ("building-only", "rf"),
    ("building-only", "hgb"),
]
CONSUMPTIONS = np.arange(0.0, 1500.0, 5.0)
MONOTONICITY_BUILDINGS = 100


def run_train(env: dict, feature_set: str, model: str) -> dict:
    """One `python -m core train` in a child process: its JSON and wall seconds."""
    command = [sys.executable, "-m", "core", "train", "--features", feature_set]
    command += ["--model", model, "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"train {feature_set} {model} failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    return {**result, "wall_s": wall}


def monotonicity(settings: Settings, model_uri: str) -> dict:
    """Buildings (labelled records of the dataset) whose predicted label gets better
    somewhere as only their consumption rises from 0 to 1,500 kWhEP/m²/an."""
    model = mlflow.sklearn.load_model(model_uri)
    _, frame = warehouse.load_dataset(settings)
    X, _ = labelled_rows(frame, "with-consumption")
    sample = X.sample(MONOTONICITY_BUILDINGS, random_state=0).astype(object)
    records = sample.where(sample.notna(), None).to_dict("records")
    labels = "ABCDEFG"
    worse, largest = 0, 0
    for record in records:
        grid = [{**record, "conso_kwhep_m2_an": value} for value in CONSUMPTIONS]
        index = np.array([labels.index(label) for label in model.predict(grid)])
        drops = -np.diff(index)
        worse += int((drops > 0).any())
        largest = max(largest, int(drops.max(initial=0)))
    return {"buildings": len(records), "non_monotone": worse, "largest_drop": largest}


def write_section(text: str) -> None:
    """Replace the "## Training" section of docs/benchmarks.md (other sections untouched)."""
    content = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = content.find(SECTION + "\n")
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + text
    else:
        end = content.find("\n## ", start + len(SECTION))
        tail = content[end + 1 :] if end >= 0 else ""
        content = content[:start] + text + ("\n" + tail if tail else "")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(content)


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def report(source: Path, version: str, results: list[dict], mono: dict, load: tuple) -> str:
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python bench/bench_train.py` — {datetime.now(UTC):%Y-%m-%d}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average before/after "
        f"{load[0]:.1f}/{load[1]:.1f} (a load above 2 means other work shared the 2 cores: "
        "wall times are then upper bounds).",
        "",
        f"`{source.name}` ingested into a fresh `DPE_HOME` (dataset `{version}`), then "
        "`python -m core train --features F --model M --json` with the defaults: grid search, "
        "5 stratified folds on the training part (macro-F1), 20 % stratified test split, "
        "seed 42; wall time includes the process start and MLflow logging. Baseline: the rule "
        "model on the same split with the consumption, the majority label without.",
        "",
        "| features | model | accuracy | macro-F1 | baseline acc. | baseline macro-F1 "
        "| CV macro-F1 | wall | best params |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["metrics"]
        base = "rules" if r["feature_set"] == "with-consumption" else "majority"
        best = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in r["best_params"].items())
        lines.append(
            f"| {r['feature_set']} | {r['model']} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} "
            f"| {m[f'baseline_{base}_accuracy']:.3f} | {m[f'baseline_{base}_macro_f1']:.3f} "
            f"| {_figure(m.get('cv_macro_f1'))} | {r['wall_s']:.1f} s "
            f"| {best or '—'} |"
        )
    slowest = max(results, key=lambda r: r["wall_s"])
    verdict = "within" if slowest["wall_s"] <= TARGET_S else "**outside**"
    best = max(
        (r for r in results if r["feature_set"] == "with-consumption"),
        key=lambda r: r["metrics"]["macro_f1"],
    )
    lines += [
        "",
        f"Slowest default search: {slowest['model']} ({slowest['feature_set']}), "
        f"{slowest['wall_s']:.1f} s wall — {verdict} the {TARGET_S:.0f} s target.",
        "",
        f"Monotonicity of the best with-consumption model ({best['model']}, run "
        f"`{best['run_id']}`): for {mono['non_monotone']} of {mono['buildings']} labelled "
        "buildings, raising only the consumption from 0 to 1,500 kWhEP/m²/an (5-unit steps) "
        f"gives a better label somewhere (largest drop: {mono['largest_drop']} class). "
        "The rule model is monotone by construction.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        home = Path(tmp) / "home"
        tracking = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        settings = Settings(_env_file=None, home=home, mlflow_tracking_uri=tracking)
        version = ingest(settings, source=args.source, progress=False)["dataset_version"]
        env = {**os.environ, "DPE_HOME": str(home), "MLFLOW_TRACKING_URI": tracking}
        env.pop("DPE_MODEL_STORE_URI", None)  # the local store under this DPE_HOME
        env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        load_before = os.getloadavg()[0]
        results = []
        for feature_set, model in RUNS:
            results.append(run_train(env, feature_set, model))
            r = results[-1]
            print(
                f"{feature_set:17} {model:7} acc {r['metrics']['accuracy']:.3f} "
                f"macro-F1 {r['metrics']['macro_f1']:.3f} {r['wall_s']:.1f} s",
                file=sys.stderr,
            )
        load = (load_before, os.getloadavg()[0])
        best = max(
            (r for r in results if r["feature_set"] == "with-consumption"),
            key=lambda r: r["metrics"]["macro_f1"],
        )
        mlflow.set_tracking_uri(tracking)
        mono = monotonicity(settings, best["model_uri"])
        text = report(args.source, version, results, mono, load)
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
