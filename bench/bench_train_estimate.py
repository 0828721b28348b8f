"""What the Train page's time estimate is made of: each family's training as the workbench runs
its first one, on the real ADEME sample.

    .venv/bin/python -m bench.bench_train_estimate [--source CSV]

The sample is ingested into a fresh DPE_HOME; an MLflow server runs on 127.0.0.1 as `make run`
starts it. Each (feature set, family, search none|grid) trains in a fresh process, as the
first training of a workbench session (its CV worker processes start with it), through
`core.modeling.train.train` with 5 folds. Recorded: wall time, the CPU seconds of the training
process and of its CV workers, and the load average. On a shared machine wall times stretch
with the load; the CPU seconds do not much, and an idle 2-core machine takes about the
process's CPU plus the workers' shared by the two of them. That figure is set beside
`ui.estimate.idle_seconds`, whose constants come from such a run
(`tests/ui/test_estimate.py` holds the figures it was fitted on). Writes the
"## Train page estimate" section of docs/benchmarks.md.
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

from bench.bench_train import SAMPLE, worker_cpu_s
from bench.results import write_section
from core.config import Settings
from core.data.ingest import ingest
from tests.support.cli import ROOT
from tests.support.servers import free_port, mlflow_server_command, running
from ui.estimate import idle_seconds

SECTION = "## Train page estimate"
FAMILIES = {
    "building-only": ("rules", "logreg", "rf", "hgb"),
    "with-consumption": ("rules", "sector-scale", "logreg", "rf", "hgb", "scale"),
}
UNTUNED = {"rules", "sector-scale"}


def one_training(home: str, tracking: str, feature_set: str, family: str, search: str) -> dict:
    """In this (fresh) process: one training, timed; its figures as a dict."""
    settings = Settings(_env_file=None, home=Path(home), mlflow_tracking_uri=tracking)
    from core.modeling.train import train  # imported by the Train page before its button

    start, cpu = time.perf_counter(), time.process_time()
    result = train(settings, feature_set, family, search=search, cv=5)
    return {
        "wall_s": time.perf_counter() - start,
        "main_cpu_s": time.process_time() - cpu,
        "workers_cpu_s": worker_cpu_s(),
        "load": os.getloadavg()[0],
        "labelled": result["train_rows"] + result["test_rows"],
    }


def report(source: Path, rows: list[dict]) -> str:
    lines = [
        SECTION,
        "",
        f"`.venv/bin/python -m bench.bench_train_estimate` — {datetime.now(UTC):%Y-%m-%d}, "
        f"{os.cpu_count()} CPUs. `{source.name}`; each training the first of a fresh process "
        "(CV workers starting), logged to an MLflow server, 5 folds. Idle = the process's CPU "
        "+ the workers' / 2: what an idle 2-core machine takes; the estimate is the page's.",
        "",
        "| features | model | search | wall | load | process CPU | workers CPU | idle | estimate |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        idle = r["main_cpu_s"] + r["workers_cpu_s"] / 2
        lines.append(
            f"| {r['feature_set']} | {r['model']} | {r['search']} | {r['wall_s']:.1f} s "
            f"| {r['load']:.1f} | {r['main_cpu_s']:.1f} s | {r['workers_cpu_s']:.1f} s "
            f"| {idle:.1f} s | {r['estimate_s']:.1f} s |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SAMPLE)
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)  # the child process's run
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_training(*args.one)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-estimate-") as tmp:
        port = free_port()
        server = mlflow_server_command(Path(tmp), port)
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with running(server, f"http://127.0.0.1:{port}/health", Path(tmp) / "mlflow.log", env):
            tracking, home = f"http://127.0.0.1:{port}", str(Path(tmp) / "home")
            settings = Settings(_env_file=None, home=Path(home), mlflow_tracking_uri=tracking)
            ingest(settings, source=args.source)
            for feature_set, families in FAMILIES.items():
                for family in families:
                    for search in ("none",) if family in UNTUNED else ("none", "grid"):
                        one = [home, tracking, feature_set, family, search]
                        command = [sys.executable, "-m", "bench.bench_train_estimate", "--one"]
                        done = subprocess.run(
                            [*command, *one], cwd=ROOT, capture_output=True, text=True, check=True
                        )
                        row = json.loads(done.stdout.strip().splitlines()[-1])
                        row |= {"feature_set": feature_set, "model": family, "search": search}
                        labelled = row["labelled"]
                        row["estimate_s"] = idle_seconds(feature_set, family, search, 5, labelled)
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr)
    text = report(args.source, rows)
    write_section(SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
