"""Training benchmark: the default search of every family on the real ADEME sample.

Ingests the sample into a fresh DPE_HOME (MLflow over SQLite there), then calls
`core.modeling.train.train(settings, F, M)` with the defaults (what `python -m core train` and the
workbench run) for each family and feature set, and records its wall time, its CPU time
(this process and its CV worker processes: on a shared machine the wall time depends on
the other work, the CPU time does not) and the test-split figures, with, for the
with-consumption runs, how often a model gets a *better* label as only the consumption rises
(`monotonicity_violations`, logged by every such run).
Writes the "## Training" section of docs/benchmarks.md. Target: each default search
< 60 s on a 2-core machine.

    .venv/bin/python -m bench.bench_train [--source CSV]
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from bench.results import write_section
from core.config import Settings
from core.data.ingest import ingest
from core.modeling.evaluate import CONSUMPTIONS
from core.modeling.train import train
from core.tracking import registry
from tests.support.cli import ROOT

SECTION = "## Training"
SAMPLE = ROOT.parent / "shared" / "data" / "dpe_tertiaire_sample.csv"
TARGET_S = 60.0
RUNS = [
    ("with-consumption", "rules"),
    ("with-consumption", "sector-scale"),
    ("with-consumption", "logreg"),
    ("with-consumption", "rf"),
    ("with-consumption", "hgb"),
    ("with-consumption", "scale"),
    ("building-only", "rules"),
    ("building-only", "logreg"),
    ("building-only", "rf"),
    ("building-only", "hgb"),
]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def worker_cpu_s() -> float:
    """CPU seconds of this process's live child processes (the CV workers, which stay up
    between searches), read from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that just ended
            continue
        if int(fields[1]) == os.getpid():  # fields: state, ppid, ..., utime, stime
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def timed_train(settings: Settings, feature_set: str, model: str) -> dict:
    """One default training: its result, wall seconds and CPU seconds."""
    cpu = time.process_time() + worker_cpu_s()
    start = time.perf_counter()
    result = train(settings, feature_set, model)
    wall = time.perf_counter() - start
    return {**result, "wall_s": wall, "cpu_s": time.process_time() + worker_cpu_s() - cpu}


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def report(source: Path, version: str, results: list[dict], load: tuple) -> str:
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python -m bench.bench_train` — {datetime.now(UTC):%Y-%m-%d}, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average before/after "
        f"{load[0]:.1f}/{load[1]:.1f} (above 2, other work shared the 2 cores: wall times "
        "are then upper bounds; CPU time is this training's own work).",
        "",
        f"`{source.name}` ingested into a fresh `DPE_HOME` (dataset `{version}`), then "
        "`core.modeling.train.train(settings, F, M)` with the defaults "
        "(as `python -m core train`): "
        "grid search, 5 time-ordered folds on the training part (macro-F1) run by 2 worker "
        "processes, time split (the newest 20 % of the records test), seed 42. "
        "Times cover the search, the refit, "
        "the evaluation and the MLflow logging; CPU counts this process and its CV workers. "
        "Baseline: the rule model on the same split with the consumption, the majority "
        "label without. Monotonicity violations: the fraction of the test buildings for which "
        f"raising only the consumption from {CONSUMPTIONS[0]:,.0f} to {CONSUMPTIONS[-1]:,.0f} "
        f"kWhEP/m²/an ({CONSUMPTIONS[1] - CONSUMPTIONS[0]:.0f}-unit steps) gives a better "
        "label somewhere (`monotonicity_violations`, logged by every with-consumption run).",
        "",
        "| features | model | accuracy | macro-F1 | baseline acc. | baseline macro-F1 "
        "| CV macro-F1 | monotonicity violations | wall | CPU | best params |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["metrics"]
        base = "rules" if r["feature_set"] == "with-consumption" else "majority"
        best = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in r["best_params"].items())
        lines.append(
            f"| {r['feature_set']} | {r['model']} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} "
            f"| {m[f'baseline_{base}_accuracy']:.3f} | {m[f'baseline_{base}_macro_f1']:.3f} "
            f"| {_figure(m.get('cv_macro_f1'))} | {_figure(m.get('monotonicity_violations'))} "
            f"| {r['wall_s']:.1f} s | {r['cpu_s']:.1f} s "
            f"| {best or '—'} |"
        )
    slowest = max(results, key=lambda r: r["wall_s"])
    verdict = "within" if slowest["wall_s"] <= TARGET_S else "**outside**"
    leaking = [r for r in results if r["feature_set"] == "with-consumption"]
    best = max(leaking, key=lambda r: r["metrics"]["macro_f1"])
    monotone = [r["model"] for r in leaking if r["metrics"]["monotonicity_violations"] == 0]
    lines += [
        "",
        f"Slowest default search: {slowest['model']} ({slowest['feature_set']}), "
        f"{slowest['wall_s']:.1f} s wall — {verdict} the {TARGET_S:.0f} s target.",
        "",
        f"Best with-consumption macro-F1: {best['model']} (run `{best['run_id']}`). "
        f"Monotone in the consumption on every test building: {', '.join(monotone) or 'none'}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tracking = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        settings = Settings(_env_file=None, home=Path(tmp) / "home", mlflow_tracking_uri=tracking)
        version = ingest(settings, source=args.source)["dataset_version"]
        registry.experiment_id(settings, registry.connect(settings))  # not timed: DB set-up
        load_before = os.getloadavg()[0]
        results = []
        for feature_set, model in RUNS:
            results.append(timed_train(settings, feature_set, model))
            r = results[-1]
            print(
                f"{feature_set:17} {model:7} acc {r['metrics']['accuracy']:.3f} macro-F1 "
                f"{r['metrics']['macro_f1']:.3f} {r['wall_s']:.1f} s (CPU {r['cpu_s']:.1f} s)",
                file=sys.stderr,
            )
        load = (load_before, os.getloadavg()[0])
        text = report(args.source, version, results, load)
    write_section(SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
