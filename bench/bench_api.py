"""Benchmark: our API against `mlflow models serve --env-manager local`, same champion.

    python -m bench.bench_api [--rounds 5] [--batch-rows 100000]

The champion is a 300-tree RandomForest on the `with-consumption` features, trained on the
ADEME sample when DPE_SHARED_DATA points at it (else on generated records), saved as an
MLflow model directory and published to a local model store. The servers
run on 127.0.0.1 with one worker each and are started and stopped here: our API with the
prediction log off (like `mlflow models serve`, which logs nothing) and on (its default),
and mlflow's. Each measure runs in rounds that alternate between the servers, so that a
machine shared with other work loads them alike. Results go to the "## API" section of
docs/benchmarks.md.
"""

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from bench.results import RESULTS, write_section
from core.config import Settings
from core.data.csv_source import read_csv
from core.data.schema import LABELS, RECORD_FIELDS
from core.data.validation import clean
from core.modeling.features import RecordEncoder
from core.modeling.models import label_index_from_proba
from core.tracking.model_format import TRUSTED_TYPES
from tests.support.champion import input_example, labelled, publish_champion
from tests.support.servers import free_port
from tooling.synth import generate_records, write_csv

ROOT = Path(__file__).resolve().parents[1]
CONCURRENCY = 8
SINGLE_PER_ROUND = 60  # one-record requests per server and round
CONCURRENT_PER_ROUND = 80  # requests per server and round, CONCURRENCY at a time
THOUSAND_PER_ROUND = 3  # 1,000-record requests per server and round
WARMUP = 20


def training_data() -> tuple[pd.DataFrame, pd.Series, str]:
    shared = os.environ.get("DPE_SHARED_DATA")
    if shared and (Path(shared) / "dpe_tertiaire_sample.csv").exists():
        X, y = labelled(read_csv(Path(shared) / "dpe_tertiaire_sample.csv"))
        return X, y, "the ADEME sample (its 1,653 labelled records)"
    X, y = labelled(generate_records(3000, seed=0))
    return X, y, "3,000 generated records"


def train_champion(X: pd.DataFrame, y: pd.Series) -> Pipeline:
    """The benchmarks' champion: a 300-tree RandomForest on the `with-consumption` fields."""
    forest = RandomForestClassifier(n_estimators=300, random_state=0)
    pipeline = Pipeline([("encode", RecordEncoder("with-consumption")), ("classify", forest)])
    return pipeline.fit(X, y)


def save_champion(pipeline: Pipeline, work: Path, settings: Settings) -> Path:
    """An MLflow model directory (what promotion exports), published to the local store."""
    import mlflow.sklearn

    model_dir = work / "mlflow-model"
    example = input_example(pipeline)
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        serialization_format="skops",
        skops_trusted_types=list(TRUSTED_TYPES),
        input_example=pd.DataFrame(example["data"], columns=example["columns"]),
    )
    publish_champion(settings, pipeline, 1, model_dir=model_dir)
    return model_dir


def records_of(X: pd.DataFrame) -> list[dict]:
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in X.astype(object).to_dict("records")
    ]


class Server:
    """A server process on loopback, started and stopped at will."""

    def __init__(self, name: str, command: list[str], env: dict, path: str, work: Path):
        self.name, self.command, self.env, self.path = name, command, env, path
        self.log = work / f"{name.replace(' ', '-')}.log"
        self.url = f"http://127.0.0.1:{command[command.index('--port') + 1]}"
        self.process: subprocess.Popen | None = None

    @property
    def is_mlflow(self) -> bool:
        return self.path == "/invocations"

    def body(self, records: list[dict]) -> dict:
        return {"dataframe_records": records} if self.is_mlflow else {"records": records}

    def start(self, probe: list[dict], timeout_s: float = 180) -> float:
        """Start the process; seconds until its first successful prediction (cold start)."""
        started = time.perf_counter()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=ROOT,
                start_new_session=True,
            )
        while time.perf_counter() - started < timeout_s:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited:\n{tail}")
            try:
                response = httpx.post(self.url + self.path, json=self.body(probe), timeout=5)
                if response.status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} gave no prediction within {timeout_s} s")

    def stop(self) -> None:
        """Stop the process and its children (mlflow's CLI runs uvicorn in a child): the
        process group this server was started as."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def predict(self, client: httpx.Client, records: list[dict]) -> np.ndarray:
        """Probability rows (ours) or labels (mlflow's: its pyfunc answers `predict`)."""
        response = client.post(self.path, json=self.body(records), timeout=300)
        response.raise_for_status()
        answer = response.json()
        if self.is_mlflow:
            return np.array(answer["predictions"], dtype=object)
        return np.array(
            [
                [p["probabilities"][label] for label in LABELS] if p["label"] else [np.nan] * 7
                for p in answer["predictions"]
            ]
        )


def timed(server: Server, client: httpx.Client, records: list[dict]) -> float:
    started = time.perf_counter()
    server.predict(client, records)
    return time.perf_counter() - started


def in_rounds(servers: list[Server], rounds: int, measure) -> dict[str, list]:
    """`measure(server, round)` -> list of values, run round after round, server after server."""
    values = {server.name: [] for server in servers}
    for round_ in range(rounds):
        for server in servers:
            values[server.name] += measure(server, round_)
    return values


def single(server: Server, round_: int, records: list[dict]) -> list[float]:
    with httpx.Client(base_url=server.url) as client:
        if round_ == 0:
            for i in range(WARMUP):
                timed(server, client, [records[i]])
        offset = round_ * SINGLE_PER_ROUND
        return [
            timed(server, client, [records[(offset + i) % len(records)]])
            for i in range(SINGLE_PER_ROUND)
        ]


def concurrent(server: Server, round_: int, records: list[dict]) -> list[tuple[int, float]]:
    """(requests, seconds) of CONCURRENCY clients sending CONCURRENT_PER_ROUND in all."""
    per_client = CONCURRENT_PER_ROUND // CONCURRENCY

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=server.url) as client:
            for i in range(per_client):
                server.predict(client, [records[(offset + i) % len(records)]])

    threads = [threading.Thread(target=client_loop, args=(k * 97,)) for k in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(per_client * CONCURRENCY, time.perf_counter() - started)]


def thousand(server: Server, round_: int, records: list[dict]) -> list[float]:
    batch = (records * (1000 // len(records) + 1))[:1000]
    with httpx.Client(base_url=server.url) as client:
        if round_ == 0:
            timed(server, client, batch)
        return [timed(server, client, batch) for _ in range(THOUSAND_PER_ROUND)]


def measure_servers(servers: list[Server], records: list[dict], rounds: int) -> dict:
    singles = in_rounds(servers, rounds, lambda s, r: single(s, r, records))
    concurrents = in_rounds(servers, rounds, lambda s, r: concurrent(s, r, records))
    thousands = in_rounds(servers, rounds, lambda s, r: thousand(s, r, records))
    results = {}
    for server in servers:
        times = np.array(singles[server.name]) * 1000
        count = sum(n for n, _ in concurrents[server.name])
        seconds = sum(s for _, s in concurrents[server.name])
        results[server.name] = {
            "p50_ms": float(np.percentile(times, 50)),
            "p99_ms": float(np.percentile(times, 99)),
            "req_s": float(len(times) / (times.sum() / 1000)),
            "c8_req_s": count / seconds,
            "thousand_ms": statistics.median(thousands[server.name]) * 1000,
        }
    return results


def cold_starts(servers: list[Server], probe: list[dict], rounds: int) -> dict[str, float]:
    """Median seconds from process start to first prediction, alternating servers."""
    times = in_rounds(servers, rounds, lambda s, r: [start_and_stop(s, probe)])
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def serving(servers: list[Server], probe: list[dict]):
    """The servers started (each answering `probe`), stopped when the block ends."""
    try:
        for server in servers:
            server.start(probe)
        yield
    finally:
        for server in servers:
            server.stop()


def start_and_stop(server: Server, probe: list[dict]) -> float:
    try:
        return server.start(probe)
    finally:
        server.stop()


def batch(ours: Server, pipeline: Pipeline, rows: int, work: Path, env: dict) -> dict:
    """Generated records: raw predict_proba vs POST /predict/csv vs the CLI; best of 2."""
    source = write_csv(work / "batch.csv", rows, seed=42)
    frame = clean(read_csv(source))[list(RECORD_FIELDS)]
    command = [sys.executable, "-m", "core", "predict", "--input", str(source), "--output"]
    command += [str(work / "predicted.csv"), "--json"]
    runs = {"raw_s": [], "route_s": [], "cli_s": [], "cli_inside_s": []}
    with httpx.Client(base_url=ours.url, timeout=900) as client:
        for _ in range(2):
            started = time.perf_counter()
            pipeline.predict_proba(frame)
            runs["raw_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            upload = {"file": ("batch.csv", source.read_bytes())}
            client.post("/predict/csv", files=upload).raise_for_status()
            runs["route_s"].append(time.perf_counter() - started)
            started = time.perf_counter()
            completed = subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}
            )
            runs["cli_s"].append(time.perf_counter() - started)
            if completed.returncode:
                raise RuntimeError(completed.stderr[-3000:])
            runs["cli_inside_s"].append(json.loads(completed.stdout)["seconds"])
    result = {key: min(values) for key, values in runs.items()}
    return {**result, "rows": rows, "size_mb": source.stat().st_size / 2**20}


def check_identical(ours: Server, mlflow: Server, pipeline: Pipeline, X: pd.DataFrame) -> dict:
    records = records_of(X)
    expected = pipeline.predict_proba(X)
    labels = np.array(pipeline.predict(X), dtype=object)
    with httpx.Client(base_url=ours.url) as client:
        one_by_one = np.vstack([ours.predict(client, [record]) for record in records])
        together = ours.predict(client, records)
    with httpx.Client(base_url=mlflow.url) as client:
        theirs = mlflow.predict(client, records)
    ours_labels = np.array(LABELS, dtype=object)[label_index_from_proba(pipeline, one_by_one)]
    return {
        "records": len(records),
        "one_max_diff": float(np.abs(one_by_one - expected).max()),
        "batch_max_diff": float(np.abs(together - expected).max()),
        "labels_equal": int((ours_labels == labels).sum()),
        "mlflow_labels_equal": int((theirs == labels).sum()),
    }


def report(results: dict) -> str:
    o, logged, m = results["ours"], results["ours, log on"], results["mlflow models serve"]
    b, c, cold = results["batch"], results["identical"], results["cold_s"]

    def row(measure, key, unit, target, better="lower", digits=1):
        ratio = m[key] / o[key] if better == "lower" else o[key] / m[key]
        cells = [f"{server[key]:.{digits}f} {unit}" for server in (o, logged, m)]
        return f"| {measure} | {' | '.join(cells)} | {ratio:.1f}× | {target} |"

    rows = [
        row("one record, p50", "p50_ms", "ms", "≥ 8×", digits=2),
        row("one record, p99", "p99_ms", "ms", "ours ≤ 10 ms", digits=2),
        row("one at a time", "req_s", "req/s", "", better="higher", digits=0),
        row(f"concurrency {CONCURRENCY}", "c8_req_s", "req/s", "≥ 5×", better="higher", digits=0),
        row("1,000 records in one request", "thousand_ms", "ms", "≥ 2×"),
        f"| cold start (process start → first prediction) | {cold['ours']:.2f} s | — | "
        f"{cold['mlflow models serve']:.2f} s | "
        f"{cold['mlflow models serve'] / cold['ours']:.1f}× | ours ≤ 1.5 s |",
    ]
    batch_rows = "\n".join(
        f"| {path} | {b[key]:.2f} s | {b[key] / b['raw_s']:.2f}× |"
        for path, key in (
            ("`POST /predict/csv` (upload, answer downloaded)", "route_s"),
            ("`python -m core predict` (whole process)", "cli_s"),
            ("`python -m core predict` (CSV read → CSV written)", "cli_inside_s"),
        )
    )
    return f"""## API

`python -m bench.bench_api` — {results["when"]}, {results["machine"]}, load average
{results["load"]} at the start (the machine is shared: figures move with its load; the servers
are measured in alternating rounds so that they share it alike). Champion: 300-tree
RandomForest, `with-consumption`, trained on {results["data"]}. Servers on 127.0.0.1, one
worker each; httpx clients with keep-alive; {results["rounds"]} rounds of
{SINGLE_PER_ROUND} one-record requests, {CONCURRENT_PER_ROUND} at concurrency {CONCURRENCY}
and {THOUSAND_PER_ROUND} of 1,000 records per server; cold start: median of
{results["cold_rounds"]} starts. "log on": our API with its prediction log (the default).

| measure | our API | our API, log on | `mlflow models serve` | ours vs mlflow | target |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Batch, {b["rows"]:,} generated records ({b["size_mb"]:.0f} MB CSV, 63 ADEME columns), end to end
(parse, validate, predict, write), best of 2:

| path | time | vs raw `pipeline.predict_proba` ({b["raw_s"]:.2f} s) |
|---|---|---|
{batch_rows}

Predictions of our API on all {c["records"]} records the champion was trained from: largest
difference to sklearn's `predict_proba` {c["one_max_diff"]:.1e} one record per request,
{c["batch_max_diff"]:.1e} all in one request; sklearn's label for {c["labels_equal"]} of
{c["records"]} (`mlflow models serve`: {c["mlflow_labels_equal"]}).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    X, y, data = training_data()
    pipeline = train_champion(X, y)
    records = records_of(X)
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "load": load,
        "data": data,
        "machine": f"{os.cpu_count()} cores",
        "rounds": args.rounds,
        "cold_rounds": args.cold_rounds,
    }
    with tempfile.TemporaryDirectory(prefix="dpe-bench-api-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        model_dir = save_champion(pipeline, work, settings)
        env = {"DPE_HOME": str(settings.home), "DPE_LOG_PREDICTIONS": "false"}
        uvicorn = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
        ours = Server("ours", [*uvicorn, "--port", str(free_port())], env, "/predict", work)
        logged = Server(
            "ours, log on",
            [*uvicorn, "--port", str(free_port())],
            {**env, "DPE_LOG_PREDICTIONS": "true"},
            "/predict",
            work,
        )
        mlflow = Server(
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)]
            + ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(free_port())],
            # It execs `uvicorn` by name: the venv's bin must be on PATH.
            {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
            "/invocations",
            work,
        )
        servers = [ours, logged, mlflow]
        print("bench: cold starts", file=sys.stderr)
        results["cold_s"] = cold_starts([ours, mlflow], records[:1], args.cold_rounds)
        with serving(servers, records[:1]):
            print("bench: requests", file=sys.stderr)
            results.update(measure_servers(servers, records, args.rounds))
            results["identical"] = check_identical(ours, mlflow, pipeline, X)
            print("bench: batch", file=sys.stderr)
            results["batch"] = batch(ours, pipeline, args.batch_rows, work, env)
    print(json.dumps(results, indent=2))
    write_section("## API", report(results))
    print(f"bench: results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
