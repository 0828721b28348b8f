"""Benchmark: what the prediction log costs the API's single-record p50.

    python -m bench.bench_monitoring [--requests 1000] [--rounds 5]

Two API processes serve the same champion (bench_api's: a 300-tree RandomForest on the
`with-consumption` features) from the same local store, one with DPE_LOG_PREDICTIONS=true,
one with false. Rounds alternate between them, so a change in the machine's load during the
run falls on both alike. Results go to the "## Monitoring" section of docs/benchmarks.md.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

from bench.bench_api import records_of, train_champion, training_data
from bench.results import RESULTS, write_section
from core.config import Settings
from core.monitoring.prediction_log import PredictionLogger
from core.monitoring.prediction_store import read_predictions
from core.serving.champion import load_champion
from core.storage import Store
from tests.support.champion import publish_champion
from tests.support.servers import free_port, running

HEADING = "## Monitoring"
WARMUP = 50


def single_record_times(url: str, records: list[dict], n: int, offset: int = 0) -> np.ndarray:
    """Milliseconds of `n` one-record POST /predict, one at a time, on one keep-alive client."""
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            record = records[(offset + i) % len(records)]
            started = time.perf_counter()
            client.post("/predict", json={"records": [record]}).raise_for_status()
            times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def logging_overhead(
    on_url: str, off_url: str, records: list[dict], requests: int, rounds: int
) -> dict:
    """p50 and p99 of single-record requests to two running APIs, logging on and off,
    measured in alternating rounds of requests // rounds each."""
    per_round = max(1, requests // rounds)
    for url in (on_url, off_url):
        single_record_times(url, records, WARMUP)
    times = {"on": [], "off": []}
    for round_ in range(rounds):
        for name, url in (("on", on_url), ("off", off_url)):
            times[name].append(single_record_times(url, records, per_round, round_ * per_round))
    result = {}
    for name, parts in times.items():
        values = np.concatenate(parts)
        result[name] = {
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
            "requests": len(values),
        }
    result["p50_overhead_pct"] = 100 * (result["on"]["p50_ms"] / result["off"]["p50_ms"] - 1)
    return result


def in_process_overhead(settings: Settings, records: list[dict], requests: int, rounds: int):
    """The same comparison without HTTP: `Champion.predict` of one record without a sink,
    with a sink that does nothing (what core.serving.champion's hand-off to its sink thread
    costs) and with the logger, in alternating rounds, 1 ms apart (a client's pace, so the sink and
    writer threads run between calls as they do in the API)."""
    logger = PredictionLogger(settings)
    champions = {
        "off": load_champion(settings),
        "no-op sink": load_champion(settings, sink=lambda *entry, **who: None),
        "on": load_champion(settings, sink=logger.log),
    }
    per_round = max(1, requests // rounds)
    times = {name: [] for name in champions}
    for round_ in range(rounds):
        for name, champion in champions.items():
            for i in range(per_round):
                record = records[(round_ * per_round + i) % len(records)]
                started = time.perf_counter()
                champion.predict([record], source="api")
                times[name].append(time.perf_counter() - started)
                time.sleep(0.001)
    logger.close()
    return {name: float(np.percentile(values, 50)) * 1000 for name, values in times.items()}


def _pct(value: float, base: float) -> str:
    return f"{100 * (value / base - 1):+.1f} %"


def report(result: dict, inside: dict, context: dict) -> str:
    on, off = result["on"], result["off"]
    return f"""{HEADING}

`python -m bench.bench_monitoring` — {context["when"]}, {context["machine"]}; load average at
start {context["load"]}. Champion: 300-tree RandomForest, `with-consumption`, trained on
{context["data"]}. Two API processes (uvicorn, one worker each, 127.0.0.1) serve it, one with
`DPE_LOG_PREDICTIONS=true` and one with `false`; {on["requests"]:,} single-record
`POST /predict` to each, one at a time, in {context["rounds"]} alternating rounds, after
{WARMUP} warm-up.

| prediction log | p50 | p99 |
|---|---|---|
| off | {off["p50_ms"]:.2f} ms | {off["p99_ms"]:.2f} ms |
| on | {on["p50_ms"]:.2f} ms | {on["p99_ms"]:.2f} ms |

Overhead on the p50: **{result["p50_overhead_pct"]:+.1f} %** (target: within a few percent; a
negative figure means the logging API answered faster: on a shared machine the HTTP figures
move by more than the logger costs, and the in-process ones below isolate it).
Without HTTP, `Champion.predict` of one record in-process, p50 (same alternating rounds):
{inside["off"]:.3f} ms without a sink, {inside["no-op sink"]:.3f} ms with a sink that does
nothing ({_pct(inside["no-op sink"], inside["off"])}: `core.serving.champion` handing each
prediction to its sink thread), {inside["on"]:.3f} ms with the logger
({_pct(inside["on"], inside["off"])}).
The logging API wrote {context["logged"]:,} predictions in {context["parts"]} Parquet part
files (`DPE_LOG_FLUSH_ROWS` {context["flush_rows"]:,}, `DPE_LOG_FLUSH_S` {context["flush_s"]:g}).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per server, in all")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    X, y, data = training_data()
    pipeline = train_champion(X, y)
    records = records_of(X)
    with tempfile.TemporaryDirectory(prefix="dpe-bench-monitoring-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        publish_champion(settings, pipeline, 1)
        urls = {}
        with ExitStack() as servers:  # leaving it stops the APIs: the logging one flushes
            for name in ("on", "off"):
                port = free_port()
                urls[name] = f"http://127.0.0.1:{port}"
                command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host",
                           "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
                env = {"DPE_HOME": str(settings.home), "DPE_LOG_PREDICTIONS": str(name == "on")}
                log_path = work / f"{name}.log"
                servers.enter_context(running(command, f"{urls[name]}/health", log_path, env, 120))
            result = logging_overhead(urls["on"], urls["off"], records, args.requests, args.rounds)
        logged = len(read_predictions(settings))
        parts = sum(p.endswith(".parquet") for p in Store(settings).list("predictions"))
        inside = in_process_overhead(settings, records, args.requests, args.rounds)
    context = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} cores",
        "load": load,
        "data": data,
        "rounds": args.rounds,
        "logged": logged,
        "parts": parts,
        "flush_rows": settings.log_flush_rows,
        "flush_s": settings.log_flush_s,
    }
    print(json.dumps({**result, "in_process": inside, **context}, indent=2))
    write_section(HEADING, report(result, inside, context))
    print(f"bench: results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
