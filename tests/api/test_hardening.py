"""The API under attack, over real sockets: a chunked body past the upload limit, JSON bodies
that would cost memory or the event loop to parse (hardening issue 24: 2, 3), errors that must
not cost the connection, guessing the admin token and forging the client's address (24.15),
too many uploads at once and slow ones (24.11), an upload cut by `kill -9` (24.19)."""

import contextlib
import http.client
import json
import os
import re
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from tests.support.api import TOKEN, api_process, app_in_thread, serving, wait_until
from tests.support.champion import publish_champion
from tests.support.cli import ROOT, cli_env
from tests.support.servers import free_port, running

MB = 2**20
PREDICT_TOKEN = "hardening-predict-token-5d1e9b"
# An upload (over 1 MiB) of few rows: quick to predict on a loaded machine.
UPLOAD = b"surface_utile,note\n" + (b"100," + b"x" * 1000 + b"\n") * 1200


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def champion_settings(settings, pipelines):
    publish_champion(settings, pipelines["1"], 1)
    return settings


def chunks(total_bytes: int, prefix: bytes = b'{"records": [{"secteur_activite": "'):
    """A JSON body of `total_bytes` sent chunked (no Content-Length), 1 MB at a time."""
    yield prefix
    block = b"x" * MB
    for _ in range(total_bytes // MB):
        yield block
    yield b'"}]}'


def test_a_chunked_body_over_the_limit_is_413_and_not_read(champion_settings, tmp_path):
    with api_process(champion_settings, tmp_path, DPE_MAX_UPLOAD_MB="1") as (url, pid):
        wait_until(lambda: serving(url, "1"), what="champion served")
        httpx.post(f"{url}/predict", json={"records": [{}]}, timeout=30)  # warm up
        before = rss_mb(pid)
        try:
            response = httpx.post(
                f"{url}/predict",
                content=chunks(48 * MB),
                headers={"content-type": "application/json"},
                timeout=60,
            )
        except httpx.TransportError:  # the server may close while the client still sends
            response = None
        grown = rss_mb(pid) - before
        # The server stopped reading at 1 MB: it did not take the 48 MB in.
        assert grown < 20, f"RSS grew by {grown:.0f} MB"
        if response is not None:
            assert response.status_code == 413, response.text
            assert "DPE_MAX_UPLOAD_MB" in response.json()["detail"]
        # Small enough, chunked too: read and answered.
        small = httpx.post(
            f"{url}/predict",
            content=chunks(0, b'{"records": [{"secteur_activite": "W'),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert small.status_code == 200, small.text


MULTIPART_START = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n\r\n"


@pytest.mark.parametrize(
    ("path", "content_type", "start"),
    [
        ("/predict", "application/json", b'{"records": [{"secteur_activite": "'),
        ("/predict/csv", "multipart/form-data; boundary=b", MULTIPART_START + b"surface_utile\n"),
    ],
)
def test_a_chunked_413_is_answered_to_a_client_that_reads(
    champion_settings, tmp_path, path, content_type, start
):
    """A client that reads while it sends (as curl does) gets the 413 itself, JSON or
    multipart alike."""
    with api_process(champion_settings, tmp_path, DPE_MAX_UPLOAD_MB="1") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", content_type)
        connection.putheader("Transfer-Encoding", "chunked")
        connection.endheaders()
        block = b"1\n" * (128 * 1024)
        sent = 0
        try:
            connection.send(b"%x\r\n%s\r\n" % (len(start), start))
            while sent < 3 * MB:  # 3 MB, well past the 1 MB limit, then stop sending
                connection.send(b"%x\r\n%s\r\n" % (len(block), block))
                sent += len(block)
        except OSError:
            pass
        response = connection.getresponse()
        body = response.read()
        assert response.status == 413, body
        assert b"DPE_MAX_UPLOAD_MB" in body and response.getheader("connection") == "close"
        connection.close()


def send_chunked(url: str, path: str, pieces, headers: dict) -> tuple[int, dict, bytes]:
    """POST `pieces` chunked, as a client that reads while it sends: it stops sending when
    the server answers (or closes) and reads the answer. (status, headers, body)."""
    connection = keep_alive_connection(url)
    connection.putrequest("POST", path)
    for name, value in {"Transfer-Encoding": "chunked", **headers}.items():
        connection.putheader(name, value)
    connection.endheaders()
    try:
        for piece in pieces:
            if select.select([connection.sock], [], [], 0)[0]:  # answered already
                break
            connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            connection.send(b"0\r\n\r\n")
    except OSError:
        pass
    response = connection.getresponse()
    answer = (response.status, dict(response.getheaders()), response.read())
    connection.close()
    return answer


def empty_records(count: int):
    """`{"records": [{}, {}, …]}` of `count` records, 64 KB at a time."""
    yield b'{"records": ['
    block = b"{}," * (2**16 // 3)
    for _ in range(count // (2**16 // 3)):
        yield block
    yield b"{}]}"


def test_a_body_of_empty_records_is_refused_while_it_streams(champion_settings, tmp_path):
    """Issue 24.2: two million `{}` (6 MB, under DPE_MAX_JSON_MB) took ~700 MB to parse, and
    without a token they were parsed before the 401."""
    env = {"DPE_PREDICT_TOKEN": PREDICT_TOKEN}
    token = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
    json_body = {"Content-Type": "application/json"}
    with api_process(champion_settings, tmp_path, **env) as (url, pid):
        wait_until(lambda: serving(url, "1"), what="champion served")
        one = httpx.post(f"{url}/predict", json={"records": [{}]}, headers=token, timeout=30)
        assert one.status_code == 200  # warm: the request path is loaded
        before = rss_mb(pid)
        status, headers, body = send_chunked(url, "/predict", empty_records(2_000_000), json_body)
        assert status == 401 and b"DPE_PREDICT_TOKEN" in body
        assert headers["connection"] == "close"
        status, _, body = send_chunked(
            url, "/predict", empty_records(2_000_000), {**json_body, **token}
        )
        assert status == 413 and b"DPE_MAX_BATCH_ROWS" in body, body
        grown = rss_mb(pid) - before
        assert grown < 30, f"RSS grew by {grown:.0f} MB"
        answered = httpx.post(f"{url}/predict", json={"records": [{}]}, headers=token, timeout=30)
        assert answered.status_code == 200


def test_a_json_body_above_its_own_limit_is_413(champion_settings, tmp_path):
    with api_process(champion_settings, tmp_path, DPE_MAX_JSON_MB="1") as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        record = b'{"secteur_activite": "' + b"x" * 1000 + b'"},'
        pieces = [b'{"records": [', *[record * 100] * 20, b"{}]}"]  # 2 MB in 700 records
        status, _, body = send_chunked(
            url, "/predict", pieces, {"Content-Type": "application/json"}
        )
        assert status == 413 and b"DPE_MAX_JSON_MB" in body, body


def unknown_keys(count: int) -> bytes:
    """One record of `count` keys that are no field: 0.9 MB for 85,000."""
    return b'{"records": [{' + b",".join(b'"u%05d": 0' % i for i in range(count)) + b"}]}"


def test_unknown_keys_neither_block_the_event_loop_nor_cost_a_record(
    champion_settings, records, tmp_path
):
    """Issue 24.3: four bodies of one record with 85,000 unknown keys sent at once made
    /livez take 9.5 s, far past a liveness probe's 1 s timeout (Kubernetes' default): they
    are refused as they stream in, never parsed."""
    body = unknown_keys(85_000)
    answers, latencies, done = [], [], threading.Event()
    with api_process(champion_settings, tmp_path) as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")

        def probe() -> None:
            with httpx.Client(base_url=url, timeout=60) as client:
                while not done.is_set() or not latencies:
                    started = time.perf_counter()
                    client.get("/livez")
                    latencies.append(time.perf_counter() - started)
                    time.sleep(0.02)

        def send() -> None:
            headers = {"Content-Type": "application/json"}
            answers.append(httpx.post(f"{url}/predict", content=body, headers=headers, timeout=60))

        prober = threading.Thread(target=probe)
        prober.start()
        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        done.set()
        prober.join()
        for answer in answers:
            assert answer.status_code == 413 and "DPE_MAX_RECORD_KEYS" in answer.json()["detail"]
        # Loose, for a loaded test machine: a blocked event loop held /livez for seconds.
        assert max(latencies) < 3.0, f"/livez took up to {max(latencies):.2f} s"
        # Among others, a record over the limit is answered with its error, unread; the rest
        # are predicted.
        wide = {f"u{i}": 0 for i in range(250)}
        response = httpx.post(f"{url}/predict", json={"records": [wide, *records[:2]]}, timeout=60)
        assert response.status_code == 200
        refused, *predicted = response.json()["predictions"]
        assert refused["label"] is None and "250 keys, more than 200" in refused["error"]
        assert all(p["label"] for p in predicted)


def keep_alive_connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def test_errors_keep_the_connection_usable(champion_settings, tmp_path):
    with api_process(champion_settings, tmp_path) as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        connection = keep_alive_connection(url)
        bad_bodies = [
            b'{"records": [{"secteur_activite": "\\ud800"}]}',  # a lone surrogate
            b'{"records": [{"surface_utile": true}]}',
            b"{oops",
        ]
        for body in bad_bodies:
            connection.request(
                "POST", "/predict", body, {"Content-Type": "application/json", "X-Request-ID": "r1"}
            )
            response = connection.getresponse()
            payload = response.read()
            assert response.status == 422, payload
            assert response.getheader("x-request-id") == "r1"
            socket_used = connection.sock
            connection.request("GET", "/health")
            health = connection.getresponse()
            health.read()
            assert health.status == 200
            assert connection.sock is socket_used  # the same connection answered again
        connection.close()


def test_a_500_says_nothing_of_the_error_and_keeps_the_connection(settings):
    app = create_app(settings, prediction_sink=lambda *args, **who: None)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret at /tmp/dpe-internal-path, pid 4242")

    with app_in_thread(app, log_level="warning") as url:
        connection = keep_alive_connection(url)
        connection.request("GET", "/boom", headers={"X-Request-ID": "abc-123"})
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 500
        assert "secret" not in body and "/tmp" not in body and "RuntimeError" not in body
        assert "abc-123" in body and response.getheader("x-request-id") == "abc-123"
        socket_used = connection.sock
        connection.request("GET", "/openapi.json")
        again = connection.getresponse()
        again.read()
        assert again.status == 200 and connection.sock is socket_used
        connection.close()


def test_a_hostile_request_id_is_replaced_by_a_new_one(settings):
    with app_in_thread(create_app(settings), log_level="warning") as url:
        response = httpx.get(f"{url}/openapi.json", headers={"X-Request-ID": "a b\tc" * 50})
        assert response.status_code == 200
        assert re.fullmatch("[0-9a-f]{32}", response.headers["x-request-id"])  # a new one


@contextmanager
def api_as_launched(settings, log_dir: Path, **env: str):
    """The API as the product starts it (`python -m core api`, i.e. `dpe api`); yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **cli_env(settings),
        "DPE_API_PORT": str(port),
        "DPE_API_TOKEN": TOKEN,
        "DPE_LOG_PREDICTIONS": "false",
        **env,
    }
    command = [sys.executable, "-m", "core", "api"]
    with running(command, f"{url}/openapi.json", log_dir / "api.log", env=env, cwd=ROOT):
        yield url


def reload_as(client: httpx.Client, token: str, forwarded_for: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return client.post("/admin/reload", headers=headers).status_code


def test_guessing_the_admin_token_is_throttled_but_the_admin_gets_in(settings, tmp_path):
    """Issue 24.15: a wrong token after DPE_ADMIN_FAILURES_PER_MINUTE is 429, whatever the
    X-Forwarded-For it claims (believed from no one here); the right token still passes."""
    with api_as_launched(settings, tmp_path) as url, httpx.Client(base_url=url) as client:
        codes = [reload_as(client, "guess", f"10.0.0.{n}") for n in range(5)]
        assert codes == [401] * 5
        throttled = client.post(
            "/admin/reload",
            headers={"Authorization": "Bearer guess", "X-Forwarded-For": "10.0.0.99"},
        )
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 61
        # The admin, from the same address, is not locked out by the guesser: 503 is the
        # reload's own answer (no champion in this store), past the token check.
        assert reload_as(client, TOKEN) == 503
        assert reload_as(client, "guess again") == 429


def test_a_trusted_proxy_names_the_client(settings, tmp_path):
    """With DPE_TRUSTED_PROXIES, the address a listed proxy forwards is the client's."""
    env = {"DPE_TRUSTED_PROXIES": "127.0.0.1"}
    with api_as_launched(settings, tmp_path, **env) as url, httpx.Client(base_url=url) as client:
        assert [reload_as(client, "guess", "10.0.0.1") for _ in range(6)][-1] == 429
        assert reload_as(client, "guess", "10.0.0.2") == 401  # another client


def test_every_launch_of_the_api_leaves_forwarded_headers_to_the_app():
    """uvicorn believes X-Forwarded-For from any loopback peer unless told not to: each way
    the product starts the API says --no-proxy-headers (the app trusts DPE_TRUSTED_PROXIES)."""
    launches = {
        "Procfile": (ROOT / "Procfile").read_text(),
        "Dockerfile": (ROOT / "Dockerfile").read_text(),
        "docker-compose.yml": (ROOT / "docker-compose.yml").read_text(),
        "deploy/k8s/base/api.yaml": (ROOT / "deploy/k8s/base/api.yaml").read_text(),
        "core/cli/serve.py": (ROOT / "core/cli/serve.py").read_text(),
    }
    for name, text in launches.items():
        lines = [line for line in text.splitlines() if "api.main:app" in line]
        assert lines, name
        for line in lines:
            after = text[text.index(line) :].split("\n\n")[0]  # the launch, over its lines
            assert "--no-proxy-headers" in after, f"{name}: {line.strip()}"


def test_uploads_beyond_the_limit_are_503_with_retry_after(champion_settings, tmp_path):
    release = threading.Event()

    def slow_upload():
        # A multipart upload that stays open until `release`: it holds the one slot.
        yield b"--b\r\nContent-Disposition: form-data; name=file; filename=a.csv\r\n\r\n"
        yield b"surface_utile\n100\n"
        release.wait(30)
        yield b"\r\n--b--\r\n"

    results = {}

    def send_slow():
        results["slow"] = httpx.post(
            f"{url}/predict/csv",
            content=slow_upload(),
            headers={"content-type": "multipart/form-data; boundary=b"},
            timeout=60,
        )

    # No minimum rate here: the held upload is slow on purpose (see the test after this one).
    env = {"DPE_MAX_CONCURRENT_UPLOADS": "1", "DPE_UPLOAD_MIN_KB_S": "0"}
    with api_process(champion_settings, tmp_path, **env) as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        sender = threading.Thread(target=send_slow)
        sender.start()
        try:
            time.sleep(1.0)  # the slow upload has taken the slot
            refused = httpx.post(
                f"{url}/predict/csv", files={"file": ("b.csv", UPLOAD)}, timeout=30
            )
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            assert "DPE_MAX_CONCURRENT_UPLOADS" in refused.json()["detail"]
            # A small JSON prediction is no upload: it is answered meanwhile.
            small = httpx.post(f"{url}/predict", json={"records": [{}]}, timeout=30)
            assert small.status_code == 200
        finally:
            release.set()
            sender.join(60)
        assert results["slow"].status_code == 200, results["slow"].text
        accepted = httpx.post(f"{url}/predict/csv", files={"file": ("b.csv", UPLOAD)}, timeout=60)
        assert accepted.status_code == 200, accepted.text


def test_an_upload_too_slow_is_cut_and_frees_its_slot(champion_settings, tmp_path):
    """Issue 24.11: an upload at 4 bytes a second held its slot as long as it lasted, and
    every other upload got 503."""
    env = {"DPE_MAX_CONCURRENT_UPLOADS": "1", "DPE_UPLOAD_GRACE_S": "1"}
    cut = {}

    def drip() -> None:  # 4 B/s, far below DPE_UPLOAD_MIN_KB_S (50)
        def pieces():
            yield MULTIPART_START + b"surface_utile\n"
            for _ in range(120):  # 30 s at most
                time.sleep(0.25)
                yield b"1"

        content_type = {"Content-Type": "multipart/form-data; boundary=b"}
        cut["answer"] = send_chunked(url, "/predict/csv", pieces(), content_type)

    with api_process(champion_settings, tmp_path, **env) as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        dripping = threading.Thread(target=drip)
        dripping.start()
        dripping.join(15)
        assert "answer" in cut, "the slow upload was not cut"
        status, _, body = cut["answer"]
        assert status == 408 and b"DPE_UPLOAD_MIN_KB_S" in body, body
        assert json.loads(body)["code"] == "too_slow"
        accepted = httpx.post(f"{url}/predict/csv", files={"file": ("b.csv", UPLOAD)}, timeout=60)
        assert accepted.status_code == 200, accepted.text


def test_an_upload_cut_by_kill_9_leaves_nothing_after_a_restart(champion_settings, tmp_path):
    """Issue 24.19: the copy a killed API spooled stayed in the temporary folder for good."""
    spool = tmp_path / "tmp"
    spool.mkdir()
    upload = b"surface_utile\n" + b"100\n" * 400_000
    with api_process(champion_settings, tmp_path, TMPDIR=str(spool)) as (url, pid):
        wait_until(lambda: serving(url, "1"), what="champion served")

        def send() -> None:
            with contextlib.suppress(httpx.TransportError):  # killed while it predicts
                httpx.post(f"{url}/predict/csv", files={"file": ("a.csv", upload)}, timeout=60)

        sender = threading.Thread(target=send)
        sender.start()
        wait_until(lambda: any(spool.glob("dpe-api-*")), timeout_s=30, what="the upload spooled")
        os.kill(pid, signal.SIGKILL)
        sender.join(60)
    assert any(spool.glob("dpe-api-*/input.csv"))  # what the kill left behind
    with api_process(champion_settings, tmp_path, TMPDIR=str(spool)) as (url, _):
        wait_until(lambda: not any(spool.glob("dpe-api-*")), what="left-overs removed at start")
