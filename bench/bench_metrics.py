"""What `/metrics` costs: our API with its Prometheus metrics on and off, same run.

Two API processes (uvicorn, one worker each, 127.0.0.1) serve the same champion, one with
`DPE_METRICS=true` (the default) and one with `false`; the prediction log is off for both, so
the difference is the instrumentation alone. bench.bench_api's harness measures them in
alternating rounds. Run: `python -m bench.bench_metrics`.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_api import (
    Server,
    measure_servers,
    records_of,
    serving,
    train_champion,
    training_data,
)
from bench.results import RESULTS, write_section
from core.config import Settings
from tests.support.champion import publish_champion
from tests.support.servers import free_port

ON, OFF = "metrics on", "metrics off"


def report(results: dict) -> str:
    on, off = results[ON], results[OFF]
    rows = [
        ("one record, p50", "p50_ms", "ms"),
        ("one record, p99", "p99_ms", "ms"),
        ("concurrency 8", "c8_req_s", "req/s"),
        ("1,000 records in one request", "thousand_ms", "ms"),
    ]
    table = "\n".join(
        f"| {what} | {on[key]:.2f} {unit} | {off[key]:.2f} {unit} | "
        f"{100 * (on[key] / off[key] - 1):+.1f} % |"
        for what, key, unit in rows
    )
    return f"""## Metrics

`python -m bench.bench_metrics` — {results["when"]}, {results["machine"]}; load average at
start {results["load"]}. Champion: 300-tree RandomForest, `with-consumption`, trained on
{results["data"]}. Two API processes (uvicorn, one worker each, 127.0.0.1), prediction log
off for both, one with `DPE_METRICS=true` (the default: `GET /metrics`, request histograms,
prediction counters) and one with `false`; {results["rounds"]} alternating rounds.

| measure | metrics on | metrics off | on vs off |
|---|---|---|---|
{table}

A difference of a few percent either way is the machine's noise: the counters are
incremented off the request path (on the prediction sink's thread); per request the
middleware reads the clock twice, moves the in-flight gauge and observes one histogram.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    X, y, data = training_data()
    pipeline = train_champion(X, y)
    records = records_of(X)
    results: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "load": ", ".join(f"{value:.1f}" for value in os.getloadavg()),
        "machine": f"{os.cpu_count()} cores",
        "data": data,
        "rounds": args.rounds,
    }
    with tempfile.TemporaryDirectory(prefix="dpe-bench-metrics-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        publish_champion(settings, pipeline, 1)
        env = {"DPE_HOME": str(settings.home), "DPE_LOG_PREDICTIONS": "false"}
        uvicorn = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
        servers = [
            Server(ON, [*uvicorn, "--port", str(free_port())], env, "/predict", work),
            Server(
                OFF,
                [*uvicorn, "--port", str(free_port())],
                {**env, "DPE_METRICS": "false"},
                "/predict",
                work,
            ),
        ]
        with serving(servers, records[:1]):
            results.update(measure_servers(servers, records, args.rounds))
    print(json.dumps(results, indent=2))
    write_section("## Metrics", report(results))
    print(f"bench: results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
