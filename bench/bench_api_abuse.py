"""Benchmark: the API under the abusive bodies of hardening issue #24, items 2 and 3.

    python -m bench.bench_api_abuse [--root DIR ...] [--no-write]

- item 2: a 20 MB `{"records": [{}, {}, …]}` body, with DPE_PREDICT_TOKEN set, sent without
  a token and with it (declaring its length, then chunked, as a client that reads while it
  sends): the answer, its time, and the server's resident memory (VmRSS) before and its peak
  (VmHWM) after; each case on a fresh server;
- item 3: four 0.9 MB bodies of one record with 85,000 unknown keys sent at once, while
  `/livez` is asked every 50 ms: its latency (median, max) and the bodies' answers;
- the one-record latency (p50 of sequential requests on one connection), which the
  product holds at or below 2 ms: of every API in alternating rounds (a shared machine
  loads them alike).

The API runs from each `--root` (default: this checkout; add an export of another commit,
e.g. `git archive main | tar -x -C /tmp/before`, to measure before and after a change), on
127.0.0.1, one worker, the prediction log off. Results go to the "## API under abuse"
section of docs/benchmarks.md (not with --no-write).
"""

import argparse
import http.client
import json
import select
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.results import write_section
from core.config import Settings
from tests.support.champion import publish_champion, train_pipeline
from tests.support.cli import cli_env
from tests.support.servers import free_port, running

ROOT = Path(__file__).resolve().parents[1]
PREDICT_TOKEN = "bench-predict-token-0123456789abcdef"
ONE_RECORD = {"secteur_activite": "W : Administrations, banques, bureaux", "surface_utile": 850.0}
SINGLE_REQUESTS = 600
ROUNDS = 6
EMPTY_RECORDS_MB = 20


def empty_records_body(megabytes: int) -> bytes:
    """`{"records": [{}, {}, …]}` of about `megabytes` MB: item 2's body."""
    count = megabytes * 2**20 // 3
    return b'{"records": [' + b"{}," * (count - 1) + b"{}]}"


def unknown_keys_body(keys: int = 85_000) -> bytes:
    """One record of `keys` unknown keys (about 0.9 MB for 85,000): item 3's body."""
    fields = b",".join(b'"u%05d":0' % i for i in range(keys))
    return b'{"records": [{' + fields + b"}]}"


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory (VmRSS) and its peak so far (VmHWM) of process `pid`, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


@contextmanager
def api(root: Path, settings: Settings, log: Path, **env: str):
    """uvicorn api.main:app from `root` on a free loopback port; yields (URL, pid)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**cli_env(settings), "DPE_LOG_PREDICTIONS": "false", **env}
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning"]
    with running(command, f"{url}/livez", log, env=env, cwd=root) as process:
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/readyz").status_code != 200:
            if time.monotonic() > deadline:
                raise TimeoutError("no champion served within 60 s")
            time.sleep(0.2)
        yield url, process.pid


def send_chunked(url: str, body: bytes, headers: dict) -> str:
    """POST `body` chunked, 64 KB at a time, reading as it sends (as curl does): it stops
    sending once the server answers. The status and the start of the answer's detail."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.putrequest("POST", "/predict")
    for name, value in {**headers, "Transfer-Encoding": "chunked"}.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        for start in range(0, len(body), 2**16):
            if select.select([connection.sock], [], [], 0)[0]:  # answered already
                break
            piece = body[start : start + 2**16]
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            connection.send(b"0\r\n\r\n")
    except OSError:
        pass
    response = connection.getresponse()
    detail = json.loads(response.read()).get("detail", "")
    connection.close()
    return f"{response.status} {detail[:90]}"


def send_whole(url: str, body: bytes, headers: dict) -> str:
    try:
        response = httpx.post(f"{url}/predict", content=body, headers=headers, timeout=120)
    except httpx.TransportError as error:  # closed while we still sent
        return f"connection closed ({type(error).__name__})"
    return f"{response.status_code} {response.json().get('detail', '')[:90]}"


def item_2(root: Path, settings: Settings, work: Path) -> dict:
    body = empty_records_body(EMPTY_RECORDS_MB)
    results: dict = {}
    token = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
    for case, send, headers in (
        ("without token", send_whole, {}),
        ("with token", send_whole, token),
        ("with token, chunked", send_chunked, token),
    ):
        with api(root, settings, work / "api-2.log", DPE_PREDICT_TOKEN=PREDICT_TOKEN) as (url, pid):
            httpx.post(f"{url}/predict", json={"records": [ONE_RECORD]}, headers=token)
            before = memory_mb(pid)
            started = time.perf_counter()
            answer = send(url, body, {**headers, "content-type": "application/json"})
            seconds = time.perf_counter() - started
            after = memory_mb(pid)
        results[case] = {
            "answer": answer,
            "seconds": round(seconds, 2),
            "rss_before_mb": round(before["VmRSS"]),
            "rss_peak_mb": round(after["VmHWM"]),
            "rss_after_mb": round(after["VmRSS"]),
        }
    return results


def item_3(root: Path, settings: Settings, work: Path) -> dict:
    body = unknown_keys_body()
    answers: list[str] = []
    latencies: list[float] = []
    with api(root, settings, work / "api-3.log") as (url, _):
        done = threading.Event()

        def send() -> None:
            response = httpx.post(
                f"{url}/predict",
                content=body,
                headers={"content-type": "application/json"},
                timeout=120,
            )
            answers.append(f"{response.status_code} {response.text[:100]}")

        def probe() -> None:
            with httpx.Client(timeout=60) as client:
                while not done.is_set():
                    started = time.perf_counter()
                    client.get(f"{url}/livez")
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        time.sleep(0.3)
        started = time.perf_counter()
        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        seconds = time.perf_counter() - started
        time.sleep(0.3)
        done.set()
        prober.join()
    return {
        "answers": sorted(set(answers)),
        "seconds": round(seconds, 2),
        "livez_median_ms": round(statistics.median(latencies) * 1000, 1),
        "livez_max_ms": round(max(latencies) * 1000, 1),
        "probes": len(latencies),
    }


def one_record_p50(roots: list[Path], settings: Settings, work: Path) -> dict[str, float]:
    """p50 (ms) of one-record requests per root, SINGLE_REQUESTS each, in alternating rounds."""
    body = {"records": [ONE_RECORD]}
    times: dict[str, list[float]] = {str(root): [] for root in roots}
    with ExitStack() as stack:
        clients = {}
        for n, root in enumerate(roots):
            url, _ = stack.enter_context(api(root, settings, work / f"api-p50-{n}.log"))
            clients[str(root)] = client = stack.enter_context(httpx.Client(base_url=url))
            for _ in range(50):
                client.post("/predict", json=body)
        for _ in range(ROUNDS):
            for name, client in clients.items():
                for _ in range(SINGLE_REQUESTS // ROUNDS):
                    started = time.perf_counter()
                    client.post("/predict", json=body).raise_for_status()
                    times[name].append(time.perf_counter() - started)
    return {root: round(statistics.median(values) * 1000, 2) for root, values in times.items()}


def report(results: dict) -> str:
    """The section: a table per item, a row per API and case."""
    lines = [
        "## API under abuse",
        "",
        "`python -m bench.bench_api_abuse`: hardening issue #24, items 2 and 3, over a real "
        "socket, one uvicorn worker, the prediction log off. The API from each checkout "
        f"({', '.join(f'`{name}`' for name in results)}); a machine shared with other work.",
        "",
        f'Item 2: a {EMPTY_RECORDS_MB} MiB `{{"records": [{{}}, {{}}, …]}}` body, '
        "DPE_PREDICT_TOKEN set; each case on a fresh server.",
        "",
        "| API | case | answer | time (s) | RSS before (MB) | peak RSS (MB) | RSS after (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for case, r in result["item_2"].items():
            lines.append(
                f"| {name} | {case} | {r['answer']} | {r['seconds']} | {r['rss_before_mb']} | "
                f"{r['rss_peak_mb']} | {r['rss_after_mb']} |"
            )
    lines += [
        "",
        "Item 3: four 0.94 MB bodies (one record, 85,000 unknown keys) at once, `/livez` asked "
        "every 50 ms.",
        "",
        "| API | /livez median (ms) | /livez max (ms) | probes | all answered in (s) | answer |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        r = result["item_3"]
        lines.append(
            f"| {name} | {r['livez_median_ms']} | {r['livez_max_ms']} | {r['probes']} | "
            f"{r['seconds']} | {'; '.join(r['answers'])} |"
        )
    p50 = ", ".join(f"{result['p50_ms']} ms (`{name}`)" for name, result in results.items())
    lines += [
        "",
        f"One record, {SINGLE_REQUESTS} sequential requests on one connection per API, in "
        f"{ROUNDS} alternating rounds: p50 {p50} (the product's target: ≤ 2 ms on a quiet "
        "machine).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root",
        type=Path,
        action="append",
        help="a checkout to run the API from (repeat to compare; default: this one)",
    )
    parser.add_argument("--no-write", action="store_true", help="print, leave docs/ alone")
    args = parser.parse_args()
    roots = args.root or [ROOT]
    with tempfile.TemporaryDirectory(prefix="dpe-bench-abuse-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        publish_champion(settings, train_pipeline(), 1)
        p50 = one_record_p50(roots, settings, work)
        results = {
            root.name: {
                "item_2": item_2(root, settings, work),
                "item_3": item_3(root, settings, work),
                "p50_ms": p50[str(root)],
            }
            for root in roots
        }
    print(results)
    text = report(results)
    print(text)
    if not args.no_write:
        write_section("## API under abuse", text)


if __name__ == "__main__":
    main()
