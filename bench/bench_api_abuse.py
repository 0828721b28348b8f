"""Benchmark: the API under the abusive bodies of hardening issue #24, items 2 and 3.

    python -m bench.bench_api_abuse [--root DIR] [--no-write]

- item 2: a 20 MB `{"records": [{}, {}, …]}` body, with DPE_PREDICT_TOKEN set, sent without
  a token and with it: the answer, its time, and the server's resident memory (VmRSS) before
  and its peak (VmHWM) after; each case on a fresh server;
- item 3: four 0.9 MB bodies of one record with 85,000 unknown keys sent at once, while
  `/livez` is asked every 50 ms: its latency (median, max) and the bodies' answers;
- the one-record latency (p50 of sequential requests on one connection), which the
  product holds at or below 2 ms.

The API runs from `--root` (default: this checkout; give an export of another commit to
measure before a change), on 127.0.0.1, one worker, the prediction log off. Results go to
the "## API under abuse" section of docs/benchmarks.md (not with --no-write).
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
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
SINGLE_REQUESTS = 400


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


def item_2(root: Path, settings: Settings, work: Path) -> dict:
    body = empty_records_body(20)
    results = {"body_mb": round(len(body) / 1e6, 1)}
    for case, headers in (
        ("without token", {}),
        ("with token", {"Authorization": f"Bearer {PREDICT_TOKEN}"}),
    ):
        with api(root, settings, work / "api-2.log", DPE_PREDICT_TOKEN=PREDICT_TOKEN) as (url, pid):
            warm = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
            httpx.post(f"{url}/predict", json={"records": [ONE_RECORD]}, headers=warm)
            before = memory_mb(pid)
            started = time.perf_counter()
            try:
                response = httpx.post(
                    f"{url}/predict",
                    content=body,
                    headers={**headers, "content-type": "application/json"},
                    timeout=120,
                )
                answer = f"{response.status_code} {response.json().get('detail', '')[:90]}"
            except httpx.TransportError as error:  # closed while we still sent
                answer = f"connection closed ({type(error).__name__})"
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
        "body_mb": round(len(body) / 1e6, 2),
        "answers": sorted(set(answers)),
        "seconds": round(seconds, 2),
        "livez_median_ms": round(statistics.median(latencies) * 1000, 1),
        "livez_max_ms": round(max(latencies) * 1000, 1),
        "probes": len(latencies),
    }


def one_record_p50(root: Path, settings: Settings, work: Path) -> dict:
    with api(root, settings, work / "api-p50.log") as (url, _), httpx.Client() as client:
        body = {"records": [ONE_RECORD]}
        for _ in range(50):
            client.post(f"{url}/predict", json=body)
        times = []
        for _ in range(SINGLE_REQUESTS):
            started = time.perf_counter()
            client.post(f"{url}/predict", json=body).raise_for_status()
            times.append(time.perf_counter() - started)
    return {"p50_ms": round(statistics.median(times) * 1000, 2), "requests": SINGLE_REQUESTS}


def report(results: dict, label: str) -> str:
    two, three, p50 = results["item_2"], results["item_3"], results["p50"]
    lines = [
        "## API under abuse",
        "",
        f"`python -m bench.bench_api_abuse` ({label}): hardening issue #24, items 2 and 3, over "
        "a real socket, one uvicorn worker, the prediction log off.",
        "",
        f'Item 2: a {two["body_mb"]} MB `{{"records": [{{}}, {{}}, …]}}` body, '
        "DPE_PREDICT_TOKEN set; each case on a fresh server.",
        "",
        "| case | answer | time (s) | RSS before (MB) | peak RSS (MB) | RSS after (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for case in ("without token", "with token"):
        r = two[case]
        lines.append(
            f"| {case} | {r['answer']} | {r['seconds']} | {r['rss_before_mb']} | "
            f"{r['rss_peak_mb']} | {r['rss_after_mb']} |"
        )
    lines += [
        "",
        f"Item 3: four {three['body_mb']} MB bodies (one record, 85,000 unknown keys) at once, "
        f"`/livez` asked every 50 ms ({three['probes']} probes): median "
        f"{three['livez_median_ms']} ms, max {three['livez_max_ms']} ms; the four answered in "
        f"{three['seconds']} s: {'; '.join(three['answers'])}.",
        "",
        f"One record, {p50['requests']} sequential requests on one connection: p50 "
        f"{p50['p50_ms']} ms (target ≤ 2 ms).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to run the API from")
    parser.add_argument("--no-write", action="store_true", help="print, leave docs/ alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpe-bench-abuse-") as tmp:
        work = Path(tmp)
        settings = Settings(_env_file=None, home=work / "home")
        publish_champion(settings, train_pipeline(), 1)
        results = {
            "item_2": item_2(args.root, settings, work),
            "item_3": item_3(args.root, settings, work),
            "p50": one_record_p50(args.root, settings, work),
        }
    print(results)
    text = report(results, f"API from {args.root.name}")
    print(text)
    if not args.no_write:
        write_section("## API under abuse", text)


if __name__ == "__main__":
    main()
