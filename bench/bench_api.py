"""Benchmark: our API against `mlflow models serve --env-manager local` and MLServer, same
champion.

    python -m bench.bench_api [--model rf|sector-scale] [--rounds 5] [--batch-rows 100000]

The champion (`--model`): a 300-tree RandomForest (`rf`, the default) or the default
champion family (`sector-scale`), on the `with-consumption` features, trained on the ADEME
sample when DPE_SHARED_DATA points at it (else on generated records), saved as an MLflow
model directory and published to a local model store. The servers run on 127.0.0.1 with one
worker each and are started and stopped here: our API with the prediction log off (like the
peers, which log nothing) and on (its default); mlflow's; and Seldon's MLServer 1.7.1 with
its scikit-learn runtime and the V2 inference protocol, in its own environment
(`make mlserver-install`: .venv-mlserver, requirements-mlserver.txt), from a joblib copy of
the same pipeline written here for it alone (the product saves skops). Each measure runs in
rounds that alternate between the servers, so that a machine shared with other work loads
them alike. Results go to the "## API (<model>)" section of docs/benchmarks.md.
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
import orjson
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from bench.results import RESULTS, write_section
from core.config import Settings
from core.data.csv_source import read_csv
from core.data.schema import LABELS, RECORD_FIELDS
from core.data.validation import clean
from core.modeling.features import RecordEncoder
from core.modeling.models import build_pipeline, label_index_from_proba
from core.tracking.model_format import TRUSTED_TYPES
from tests.support.champion import labelled, publish_champion
from tests.support.servers import free_port
from tooling.synth import generate_records, write_csv

ROOT = Path(__file__).resolve().parents[1]
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"  # `make mlserver-install`
MODELS = {"rf": "300-tree RandomForest", "sector-scale": "sector-scale (the default family)"}
CONCURRENCY = 8
SINGLE_PER_ROUND = 60  # one-record requests per server and round
CONCURRENT_PER_ROUND = 80  # requests per server and round, CONCURRENCY at a time
THOUSAND_PER_ROUND = 10  # 1,000-record requests per server and round
WARMUP = 20


def training_data() -> tuple[pd.DataFrame, pd.Series, str]:
    shared = os.environ.get("DPE_SHARED_DATA")
    if shared and (Path(shared) / "dpe_tertiaire_sample.csv").exists():
        X, y = labelled(read_csv(Path(shared) / "dpe_tertiaire_sample.csv"))
        return X, y, "the ADEME sample (its 1,653 labelled records)"
    X, y = labelled(generate_records(3000, seed=0))
    return X, y, "3,000 generated records"


def train_champion(X: pd.DataFrame, y: pd.Series, model: str = "rf") -> Pipeline:
    """The benchmarks' champion on the `with-consumption` fields: a 300-tree RandomForest
    (`rf`), or the family `model` names with its defaults (`sector-scale`)."""
    if model != "rf":
        return build_pipeline(model, "with-consumption").fit(X, y)
    forest = RandomForestClassifier(n_estimators=300, random_state=0)
    pipeline = Pipeline([("encode", RecordEncoder("with-consumption")), ("classify", forest)])
    return pipeline.fit(X, y)


def save_champion(pipeline: Pipeline, X: pd.DataFrame, work: Path, settings: Settings) -> Path:
    """An MLflow model directory (what promotion exports), published to the local store.
    Its input example: three training records, then one with every field missing."""
    import mlflow.sklearn

    model_dir = work / "mlflow-model"
    example = pd.concat([X.head(3), pd.DataFrame([{}], columns=X.columns)], ignore_index=True)
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        serialization_format="skops",
        skops_trusted_types=list(TRUSTED_TYPES),
        input_example=example.astype(object).where(example.notna(), None),
    )
    publish_champion(settings, pipeline, 1, model_dir=model_dir)
    return model_dir


def mlserver_repository(pipeline: Pipeline, work: Path) -> Path:
    """MLServer's model repository: the server's settings (loopback, free ports) and the
    champion, a joblib copy of `pipeline` (what its scikit-learn runtime loads; written for
    this benchmark only), served by mlserver_sklearn.SKLearnModel as model `dpe`."""
    import joblib

    repository = work / "mlserver"
    (repository / "dpe").mkdir(parents=True)
    ports = {name: free_port() for name in ("http_port", "grpc_port", "metrics_port")}
    settings = {"host": "127.0.0.1", **ports}
    (repository / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": "dpe",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    (repository / "dpe" / "model-settings.json").write_text(json.dumps(model))
    joblib.dump(pipeline, repository / "dpe" / "model.joblib")
    return repository


def records_of(X: pd.DataFrame) -> list[dict]:
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in X.astype(object).to_dict("records")
    ]


class Server:
    """A server process on loopback, started and stopped at will: our API (`path` /predict,
    its JSON records); subclasses speak the peers' protocols."""

    def __init__(self, name: str, command: list[str], env: dict, path: str, work: Path, url=""):
        self.name, self.command, self.env, self.path = name, command, env, path
        self.log = work / f"{name.replace(' ', '-')}.log"
        self.url = url or f"http://127.0.0.1:{command[command.index('--port') + 1]}"
        self.process: subprocess.Popen | None = None

    def body(self, records: list[dict]) -> bytes:
        """The request's JSON body for `records` (built before the clock starts)."""
        return orjson.dumps({"records": records})

    def proba(self, answer: dict) -> np.ndarray:
        """The answer's probabilities, one row A..G per record (NaN when not predicted)."""
        return np.array(
            [
                [p["probabilities"][label] for label in LABELS] if p["label"] else [np.nan] * 7
                for p in answer["predictions"]
            ]
        )

    def start(self, probe: list[dict], timeout_s: float = 300) -> float:
        """Start the process; seconds until its first successful prediction (cold start)."""
        body = self.body(probe)
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
                response = httpx.post(self.url + self.path, content=body, headers=JSON, timeout=5)
                if response.status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.01)
        raise TimeoutError(f"{self.name} gave no prediction within {timeout_s} s")

    def stop(self) -> None:
        """Stop the process and its children (mlflow's CLI runs uvicorn in a child, MLServer
        its inference worker): the process group this server was started as."""
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

    def post(self, client: httpx.Client, body: bytes) -> dict:
        """One request; its decoded JSON answer."""
        response = client.post(self.path, content=body, headers=JSON, timeout=300)
        response.raise_for_status()
        return response.json()

    def predict(self, client: httpx.Client, records: list[dict]) -> np.ndarray:
        return self.proba(self.post(client, self.body(records)))


JSON = {"content-type": "application/json"}


class MlflowServer(Server):
    """`mlflow models serve`: its pyfunc answers the labels (`predict`), not probabilities."""

    def body(self, records: list[dict]) -> bytes:
        return orjson.dumps({"dataframe_records": records})

    def proba(self, answer: dict) -> np.ndarray:
        return np.array(answer["predictions"], dtype=object)


class MlserverServer(Server):
    """MLServer's V2 inference protocol: one input per record field (a column: BYTES for
    text, FP64 for numbers, null where missing), decoded by its pandas codec into the
    DataFrame the pipeline takes; the `predict_proba` output asked for."""

    def __init__(self, name: str, repository: Path, classes: list[str], work: Path):
        settings = json.loads((repository / "settings.json").read_text())
        # The pipeline's classes (core.modeling) are imported from this checkout.
        env = {"PYTHONPATH": str(ROOT), "MLSERVER_LOAD_MODELS_AT_STARTUP": "true"}
        url = f"http://127.0.0.1:{settings['http_port']}"
        super().__init__(
            name, [str(MLSERVER), "start", str(repository)], env, "/v2/models/dpe/infer", work, url
        )
        self.columns = [LABELS.index(label) for label in classes]

    def body(self, records: list[dict]) -> bytes:
        inputs = []
        for name, spec in RECORD_FIELDS.items():
            text = spec.kind == "category"
            inputs.append(
                {
                    "name": name,
                    "datatype": "BYTES" if text else "FP64",
                    "shape": [len(records), 1],
                    "data": [record.get(name) for record in records],
                }
            )
        request = {
            "parameters": {"content_type": "pd"},
            "inputs": inputs,
            "outputs": [{"name": "predict_proba"}],
        }
        return orjson.dumps(request)

    def proba(self, answer: dict) -> np.ndarray:
        [output] = answer["outputs"]
        values = np.array(output["data"], dtype=float).reshape(output["shape"])
        full = np.zeros((len(values), len(LABELS)))
        full[:, self.columns] = values
        return full


def timed(server: Server, client: httpx.Client, records: list[dict]) -> float:
    """Seconds from sending the request (its body already built) to its decoded answer."""
    return timed_parts(server, client, records)[1]


def timed_parts(server: Server, client: httpx.Client, records: list[dict]) -> tuple[float, float]:
    """Seconds from sending the request (its body already built) to its answer's last byte,
    and to the answer decoded (httpx's `json()`: the standard library's parser)."""
    body = server.body(records)
    started = time.perf_counter()
    response = client.post(server.path, content=body, headers=JSON, timeout=300)
    received = time.perf_counter()
    response.raise_for_status()
    response.json()
    return received - started, time.perf_counter() - started


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
        bodies = [server.body([records[(offset + i) % len(records)]]) for i in range(per_client)]
        with httpx.Client(base_url=server.url) as client:
            for body in bodies:
                server.post(client, body)

    threads = [threading.Thread(target=client_loop, args=(k * 97,)) for k in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [(per_client * CONCURRENCY, time.perf_counter() - started)]


def thousand(server: Server, round_: int, records: list[dict]) -> list[tuple[float, float]]:
    batch = (records * (1000 // len(records) + 1))[:1000]
    with httpx.Client(base_url=server.url) as client:
        if round_ == 0:
            timed(server, client, batch)
        return [timed_parts(server, client, batch) for _ in range(THOUSAND_PER_ROUND)]


def answer_kb(server: Server, records: list[dict]) -> float:
    """The size of the server's answer to 1,000 records, in kB."""
    batch = (records * (1000 // len(records) + 1))[:1000]
    response = httpx.post(server.url + server.path, content=server.body(batch), headers=JSON)
    return len(response.content) / 1000


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
            "thousand_received_ms": statistics.median(r for r, _ in thousands[server.name]) * 1000,
            "thousand_ms": statistics.median(d for _, d in thousands[server.name]) * 1000,
            "answer_kb": answer_kb(server, records),
        }
    return results


def cold_starts(servers: list[Server], probe: list[dict], rounds: int) -> dict[str, float]:
    """Median seconds from process start to first prediction, alternating servers."""
    times = in_rounds(servers, rounds, lambda s, r: [start_and_stop(s, probe)])
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def busy_cores(count: int):
    """`count` CPU-bound processes while the block runs: a loaded machine, made the same
    way each run. Each is its own session, as other services are: Linux's scheduler shares
    the CPUs between sessions first, so busy loops in this one would not load a server
    started in its own session."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count)
    ]
    try:
        time.sleep(1)  # every loop running before the first server starts
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


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


def check_identical(servers: dict[str, Server], pipeline: Pipeline, X: pd.DataFrame) -> dict:
    """Each server's answers on `X` against sklearn's: ours and MLServer's probabilities, one
    record per request and all in one; mlflow's labels."""
    ours, mlflow, mlserver = servers["ours"], servers[MLFLOW], servers[MLSERVER_NAME]
    records = records_of(X)
    expected = pipeline.predict_proba(X)
    labels = np.array(pipeline.predict(X), dtype=object)
    with httpx.Client(base_url=ours.url) as client:
        one_by_one = np.vstack([ours.predict(client, [record]) for record in records])
        together = ours.predict(client, records)
    with httpx.Client(base_url=mlflow.url) as client:
        theirs = mlflow.predict(client, records)
    with httpx.Client(base_url=mlserver.url) as client:
        mlserver_proba = mlserver.predict(client, records)
    ours_labels = np.array(LABELS, dtype=object)[label_index_from_proba(pipeline, one_by_one)]
    return {
        "records": len(records),
        "one_max_diff": float(np.abs(one_by_one - expected).max()),
        "batch_max_diff": float(np.abs(together - expected).max()),
        "mlserver_max_diff": float(np.abs(mlserver_proba - expected).max()),
        "labels_equal": int((ours_labels == labels).sum()),
        "mlflow_labels_equal": int((theirs == labels).sum()),
    }


MLFLOW, MLSERVER_NAME = "mlflow models serve", "MLServer"
PEERS = (MLFLOW, MLSERVER_NAME)
TABLE_HEAD = (
    "| measure | our API | our API, log on | `mlflow models serve` | MLServer 1.7.1 "
    "| ours vs mlflow | ours vs MLServer | target |\n|---|---|---|---|---|---|---|---|"
)


def report(results: dict) -> str:
    names = ("ours", "ours, log on", *PEERS)
    b, c, cold = results["batch"], results["identical"], results["cold_s"]

    def row(measure, key, unit, target, better="lower", digits=1):
        """A measure per server, and ours vs each peer (`better`: "lower", "higher", or
        None for a size, which no ratio ranks)."""
        cells = [f"{results[name][key]:.{digits}f} {unit}" for name in names]
        ratios = [
            results[peer][key] / results["ours"][key]
            if better == "lower"
            else results["ours"][key] / results[peer][key]
            for peer in PEERS
        ]
        shown = " | ".join(f"{ratio:.1f}×" if better else "—" for ratio in ratios)
        return f"| {measure} | {' | '.join(cells)} | {shown} | {target} |"

    def cold_row(measure: str, seconds: dict, target: str) -> str:
        ratios = " | ".join(f"{seconds[peer] / seconds['ours']:.1f}×" for peer in PEERS)
        return (
            f"| {measure} | {seconds['ours']:.2f} s | — | {seconds[MLFLOW]:.2f} s | "
            f"{seconds[MLSERVER_NAME]:.2f} s | {ratios} | {target} |"
        )

    rows = [
        row("one record, p50", "p50_ms", "ms", "≥ 8× mlflow; hold ≤ 2 ms", digits=2),
        row("one record, p99", "p99_ms", "ms", "ours ≤ 10 ms", digits=2),
        row("one at a time", "req_s", "req/s", "", better="higher", digits=0),
        row(
            f"concurrency {CONCURRENCY}",
            "c8_req_s",
            "req/s",
            "≥ 5× mlflow",
            better="higher",
            digits=0,
        ),
        row(
            "1,000 records in one request, to the answer's last byte",
            "thousand_received_ms",
            "ms",
            "≤ 10 ms, ≥ 5× mlflow",
        ),
        row("1,000 records in one request, answer decoded", "thousand_ms", "ms", ""),
        row("answer to 1,000 records", "answer_kb", "kB", "", better=None, digits=0),
        cold_row("cold start (process start → first prediction)", cold, "ours ≤ 1.0 s"),
        cold_row(
            f"cold start, every core busy ({results['machine']}, as many busy loops)",
            results["cold_busy_s"],
            "ours ≤ 1.0 s",
        ),
    ]
    batch_rows = "\n".join(
        f"| {path} | {b[key]:.2f} s | {b[key] / b['raw_s']:.2f}× |"
        for path, key in (
            ("`POST /predict/csv` (upload, answer downloaded)", "route_s"),
            ("`python -m core predict` (whole process)", "cli_s"),
            ("`python -m core predict` (CSV read → CSV written)", "cli_inside_s"),
        )
    )
    return f"""{results["heading"]}

`python -m bench.bench_api --model {results["model"]}` — {results["when"]}, {results["machine"]},
load average {results["load"]} at the start and {results["load_end"]} at the end (the machine is
shared: figures move with its load; the servers are measured in alternating rounds so that
they share it alike). Champion: {MODELS[results["model"]]}, `with-consumption`, trained on
{results["data"]}. Servers on 127.0.0.1, one worker each (MLServer: its default of one
inference worker process beside the HTTP one); httpx clients with keep-alive, request bodies
built before the clock starts; {results["rounds"]} rounds of {SINGLE_PER_ROUND} one-record
requests, {CONCURRENT_PER_ROUND} at concurrency {CONCURRENCY} and {THOUSAND_PER_ROUND} of
1,000 records per server; cold start: median of {results["cold_rounds"]} starts, on a quiet
machine and with every core busy (as many `while True: pass` processes as cores, each in its
own session, as other services are). "log on": our API with its prediction log (the default).
mlflow answers labels (`predict`), ours and MLServer probabilities (MLServer: the V2
protocol, one input per field, output `predict_proba`). A 1,000-record request is timed to
its answer's last byte (what the server and the socket take), then to the answer decoded by
httpx's `json()`, the standard library's parser: the client's own work, which grows with the
answer (its size is in the table).

{TABLE_HEAD}
{chr(10).join(rows)}

Batch, {b["rows"]:,} generated records ({b["size_mb"]:.0f} MB CSV, 63 ADEME columns), end to end
(parse, validate, predict, write), best of 2:

| path | time | vs raw `pipeline.predict_proba` ({b["raw_s"]:.2f} s) |
|---|---|---|
{batch_rows}

Predictions on all {c["records"]} records the champion was trained from: largest difference
to sklearn's `predict_proba` {c["one_max_diff"]:.1e} (our API, one record per request),
{c["batch_max_diff"]:.1e} (our API, all in one request), {c["mlserver_max_diff"]:.1e}
(MLServer); sklearn's label for {c["labels_equal"]} of {c["records"]} (ours),
{c["mlflow_labels_equal"]} (`mlflow models serve`).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="rf")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    args = parser.parse_args()
    if not MLSERVER.exists():
        raise SystemExit(f"{MLSERVER} is missing: run `make mlserver-install` first")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    X, y, data = training_data()
    pipeline = train_champion(X, y, args.model)
    records = records_of(X)
    results = {
        "heading": f"## API, {args.model}",
        "model": args.model,
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
        model_dir = save_champion(pipeline, X, work, settings)
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
        mlflow = MlflowServer(
            MLFLOW,
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir)]
            + ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(free_port())],
            # It execs `uvicorn` by name: the venv's bin must be on PATH.
            {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
            "/invocations",
            work,
        )
        classes = [str(c) for c in pipeline.classes_]
        mlserver = MlserverServer(MLSERVER_NAME, mlserver_repository(pipeline, work), classes, work)
        servers = [ours, logged, mlflow, mlserver]
        print("bench: cold starts", file=sys.stderr)
        results["cold_s"] = cold_starts([ours, mlflow, mlserver], records[:1], args.cold_rounds)
        with busy_cores(os.cpu_count() or 1):
            print("bench: cold starts, every core busy", file=sys.stderr)
            results["cold_busy_s"] = cold_starts(
                [ours, mlflow, mlserver], records[:1], args.cold_rounds
            )
        with serving(servers, records[:1]):
            print("bench: requests", file=sys.stderr)
            results.update(measure_servers(servers, records, args.rounds))
            by_name = {server.name: server for server in servers}
            results["identical"] = check_identical(by_name, pipeline, X)
            print("bench: batch", file=sys.stderr)
            results["batch"] = batch(ours, pipeline, args.batch_rows, work, env)
    results["load_end"] = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(json.dumps(results, indent=2))
    write_section(results["heading"], report(results))
    print(f"bench: results in {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
