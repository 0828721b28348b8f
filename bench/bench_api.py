"""Benchmark: our API against `mlflow models serve --env-manager local`, same champion.

    python -m bench.bench_api [--requests 300] [--batch-rows 100000]

The champion is a 300-tree RandomForest on the `with-consumption` features, trained on the
ADEME sample when DPE_SHARED_DATA points at it (else on generated records), saved as an
MLflow model directory (code_paths: core) and published to a local model store. Both
servers run on 127.0.0.1 with one worker each, are started and stopped here, and answer the
same records. Results go to the "## API" section of docs/benchmarks.md.
"""

import argparse
import json
import os
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

from core.config import Settings
from core.features import RecordEncoder
from core.ingest import clean, read_csv
from core.schema import LABELS, RECORD_FIELDS
from core.synth import generate_records, write_csv
from tests.champion import input_example, labelled, publish_champion
from tests.servers import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
WARMUP = 20
CONCURRENCY = 8


def training_data() -> tuple[pd.DataFrame, pd.Series, str]:
    shared = os.environ.get("DPE_SHARED_DATA")
    if shared and (Path(shared) / "dpe_tertiaire_sample.csv").exists():
        X, y = labelled(read_csv(Path(shared) / "dpe_tertiaire_sample.csv"))
        return X, y, "the ADEME sample (labelled records)"
    X, y = labelled(generate_records(3000, seed=0))
    return X, y, "3,000 generated records"


def save_champion(pipeline: Pipeline, work: Path, settings: Settings) -> Path:
    """An MLflow model directory (what promotion exports), published to the local store."""
    import mlflow.sklearn

    model_dir = work / "mlflow-model"
    example = input_example(pipeline)
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        serialization_format="cloudpickle",
        code_paths=[str(ROOT / "core")],
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
    """A server process on loopback; `predict(client, records)` returns probability rows."""

    def __init__(self, name: str, command: list[str], env: dict, path: str, work: Path):
        self.name, self.command, self.env, self.path = name, command, env, path
        self.log = work / f"{name.split()[0]}.log"
        self.url = f"http://127.0.0.1:{command[command.index('--port') + 1]}"
        self.process: subprocess.Popen | None = None

    def body(self, records: list[dict]) -> dict:
        if self.name.startswith("mlflow"):
            return {"dataframe_records": records}
        return {"records": records}

    def start(self, probe: list[dict], timeout_s: float = 120) -> float:
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
        if self.process is not None:
            stop(self.process)

    def predict(self, client: httpx.Client, records: list[dict]) -> np.ndarray:
        response = client.post(self.path, json=self.body(records), timeout=120)
        response.raise_for_status()
        answer = response.json()
        if self.name.startswith("mlflow"):
            return np.array(answer["predictions"], dtype=object)  # labels
        return np.array(
            [
                [p["probabilities"][label] for label in LABELS]
                if p["probabilities"]
                else [np.nan] * 7
                for p in answer["predictions"]
            ]
        )


def one_at_a_time(server: Server, records: list[dict], n: int) -> dict:
    times = []
    with httpx.Client(base_url=server.url) as client:
        for i in range(n + WARMUP):
            started = time.perf_counter()
            server.predict(client, [records[i % len(records)]])
            times.append(time.perf_counter() - started)
    times = np.array(times[WARMUP:]) * 1000
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p99_ms": float(np.percentile(times, 99)),
        "req_s": float(n / (times.sum() / 1000)),
    }


def concurrent(server: Server, records: list[dict], n: int) -> float:
    """Requests per second with CONCURRENCY clients sending n requests in all."""
    per_client = max(1, n // CONCURRENCY)

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=server.url) as client:
            for i in range(per_client):
                server.predict(client, [records[(offset + i) % len(records)]])

    with httpx.Client(base_url=server.url) as client:  # warm up
        for i in range(WARMUP):
            server.predict(client, [records[i]])
    threads = [threading.Thread(target=client_loop, args=(k * 97,)) for k in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_client * CONCURRENCY / (time.perf_counter() - started)


def thousand(server: Server, records: list[dict], repeats: int = 15) -> float:
    batch = (records * (1000 // len(records) + 1))[:1000]
    times = []
    with httpx.Client(base_url=server.url) as client:
        server.predict(client, batch)
        for _ in range(repeats):
            started = time.perf_counter()
            server.predict(client, batch)
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def batch(ours: Server, pipeline: Pipeline, rows: int, work: Path, env: dict) -> dict:
    """100,000 generated records: raw predict_proba vs POST /predict/csv vs the CLI."""
    source = write_csv(work / "batch.csv", rows, seed=42)
    frame = clean(read_csv(source))[list(RECORD_FIELDS)]
    started = time.perf_counter()
    pipeline.predict_proba(frame)
    raw = time.perf_counter() - started
    with httpx.Client(base_url=ours.url, timeout=600) as client:
        started = time.perf_counter()
        response = client.post("/predict/csv", files={"file": ("batch.csv", source.read_bytes())})
        route = time.perf_counter() - started
        response.raise_for_status()
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "core", "predict", "--input", str(source), "--output",
         str(work / "predicted.csv"), "--json"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, check=True,
    )  # fmt: skip
    cli = time.perf_counter() - started
    inside = json.loads(completed.stdout)["seconds"]
    return {"rows": rows, "raw_s": raw, "route_s": route, "cli_s": cli, "cli_inside_s": inside,
            "size_mb": source.stat().st_size / 2**20}  # fmt: skip


def check_identical(ours: Server, mlflow: Server, pipeline: Pipeline, X: pd.DataFrame) -> dict:
    records = records_of(X)
    expected = pipeline.predict_proba(X)
    labels = np.array(pipeline.predict(X), dtype=object)
    with httpx.Client(base_url=ours.url) as client:
        one_by_one = np.vstack([ours.predict(client, [r]) for r in records])
        together = ours.predict(client, records)
    with httpx.Client(base_url=mlflow.url) as client:
        theirs = mlflow.predict(client, records)
    return {
        "records": len(records),
        "ours_one_max_diff": float(np.abs(one_by_one - expected).max()),
        "ours_batch_max_diff": float(np.abs(together - expected).max()),
        "ours_labels_equal": bool(
            (np.array(LABELS, dtype=object)[one_by_one.argmax(axis=1)] == labels).all()
        ),
        "mlflow_labels_equal": int((theirs == labels).sum()),
    }


def write_section(text: str) -> None:
    """Replace (or add) the "## API" section of docs/benchmarks.md, leaving the rest."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    lines = current.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == "## API"), None)
    if start is None:
        DOC.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    DOC.write_text("".join(lines[:start]) + text + ("\n" + tail if tail else ""))


def report(results: dict) -> str:
    o, m, b, c = results["ours"], results["mlflow"], results["batch"], results["identical"]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}×"

    rows = [
        ("one record, p50", f"{o['p50_ms']:.2f} ms", f"{m['p50_ms']:.1f} ms",
         ratio(m["p50_ms"], o["p50_ms"]) + " faster", "≥ 8× faster"),
        ("one record, p99", f"{o['p99_ms']:.2f} ms", f"{m['p99_ms']:.1f} ms",
         ratio(m["p99_ms"], o["p99_ms"]) + " faster", "≤ 10 ms"),
        ("one at a time", f"{o['req_s']:.0f} req/s", f"{m['req_s']:.0f} req/s",
         ratio(o["req_s"], m["req_s"]), ""),
        (f"concurrency {CONCURRENCY}", f"{o['c8_req_s']:.0f} req/s", f"{m['c8_req_s']:.0f} req/s",
         ratio(o["c8_req_s"], m["c8_req_s"]), "≥ 5×"),
        ("1,000 records, one request", f"{o['thousand_ms']:.1f} ms", f"{m['thousand_ms']:.1f} ms",
         f"{o['thousand_ms'] / m['thousand_ms']:.2f} of it", "≤ 0.5 of it"),
        ("cold start (start → first prediction)", f"{o['cold_s']:.2f} s", f"{m['cold_s']:.2f} s",
         ratio(m["cold_s"], o["cold_s"]) + " faster", "≤ 1.5 s"),
    ]  # fmt: skip
    table = "\n".join(f"| {' | '.join(row)} |" for row in rows)
    n = b["rows"]
    batch_rows = "\n".join(
        f"| {path} | {b[key]:.2f} s | {b[key] / b['raw_s']:.2f}× |"
        for path, key in (
            ("`POST /predict/csv` (upload, answer downloaded)", "route_s"),
            ("`python -m core predict` (whole process)", "cli_s"),
            ("`python -m core predict` (load champion → CSV written)", "cli_inside_s"),
        )
    )
    return f"""## API

`python -m bench.bench_api` — {results["when"]}, {results["machine"]}; load average at start
{results["load"]}. Champion: 300-tree RandomForest, `with-consumption`, trained on
{results["data"]}. Both servers on 127.0.0.1, one worker each, started and stopped by the
bench; httpx clients with keep-alive; {results["requests"]} requests one at a time (after
{WARMUP} warm-up), {results["requests"]} at concurrency {CONCURRENCY}.

| measure | our API | `mlflow models serve` | ours vs mlflow | target |
|---|---|---|---|---|
{table}

Batch, {n:,} generated records ({b["size_mb"]:.0f} MB CSV, 63 ADEME columns), end to end
(parse, validate, predict, write):

| path | time | vs raw `pipeline.predict_proba` ({b["raw_s"]:.2f} s) |
|---|---|---|
{batch_rows}

Predictions on all {c["records"]} records the champion was trained from: largest difference
to sklearn's `predict_proba`, one record per request {c["ours_one_max_diff"]:.1e}, all in one
request {c["ours_batch_max_diff"]:.1e}; labels identical to sklearn's: {c["ours_labels_equal"]}.
`mlflow models serve` gave sklearn's label for {c["mlflow_labels_equal"]} of them.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    X, y, data = training_data()
    forest = RandomForestClassifier(n_estimators=300, random_state=0)
    pipeline = Pipeline([("encode", RecordEncoder("with-consumption")), ("classify", forest)])
    pipeline.fit(X, y)
    with tempfile.TemporaryDirectory(prefix="dpe-bench-api-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        model_dir = save_champion(pipeline, work, settings)
        env = {"DPE_HOME": str(settings.home)}
        records = records_of(X)
        ours = Server(
            "ours",
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
             "--port", str(free_port()), "--log-level", "warning"],
            env, "/predict", work,
        )  # fmt: skip
        mlflow = Server(
            "mlflow models serve",
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
             "--env-manager", "local", "--host", "127.0.0.1", "--port", str(free_port())],
            # It execs `uvicorn` by name: the venv's bin must be on PATH.
            {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
            "/invocations", work,
        )  # fmt: skip
        results = {"when": time.strftime("%Y-%m-%d %H:%M"), "load": load, "data": data,
                   "machine": f"{os.cpu_count()} cores", "requests": args.requests}  # fmt: skip
        try:
            for server in (ours, mlflow):
                print(f"bench: {server.name}", file=sys.stderr)
                cold = server.start(records[:1])
                measured = one_at_a_time(server, records, args.requests)
                measured["c8_req_s"] = concurrent(server, records, args.requests)
                measured["thousand_ms"] = thousand(server, records)
                measured["cold_s"] = cold
                results["ours" if server is ours else "mlflow"] = measured
            results["identical"] = check_identical(ours, mlflow, pipeline, X)
            print("bench: batch", file=sys.stderr)
            results["batch"] = batch(ours, pipeline, args.batch_rows, work, env)
        finally:
            ours.stop()
            mlflow.stop()
    print(json.dumps(results, indent=2))
    write_section(report(results))
    print(f"bench: results in {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
