"""The API under attack, over real sockets: a chunked body past the upload limit, errors that
must not cost the connection, guessing the admin token, too many uploads at once."""

import http.client
import re
import threading
import time
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from tests.support.api import TOKEN, api_process, app_in_thread, serving, wait_until
from tests.support.champion import publish_champion

MB = 2**20


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


def test_guessing_the_admin_token_is_throttled(settings, tmp_path):
    with api_process(settings, tmp_path) as (url, _), httpx.Client(base_url=url) as client:
        if True:
            wrong = {"Authorization": "Bearer guess"}
            codes = [client.post("/admin/reload", headers=wrong).status_code for _ in range(5)]
            assert codes == [401] * 5
            throttled = client.post("/admin/reload", headers=wrong)
            assert throttled.status_code == 429
            assert 1 <= int(throttled.headers["retry-after"]) <= 61
            # Even the right token waits: guessing it must not go on meanwhile.
            right = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            assert right.status_code == 429


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

    big = b"surface_utile\n" + b"100\n" * (MB // 2)  # 2 MB: an upload
    with api_process(champion_settings, tmp_path, DPE_MAX_CONCURRENT_UPLOADS="1") as (url, _):
        wait_until(lambda: serving(url, "1"), what="champion served")
        sender = threading.Thread(target=send_slow)
        sender.start()
        try:
            time.sleep(1.0)  # the slow upload has taken the slot
            refused = httpx.post(f"{url}/predict/csv", files={"file": ("b.csv", big)}, timeout=30)
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
        accepted = httpx.post(f"{url}/predict/csv", files={"file": ("b.csv", big)}, timeout=60)
        assert accepted.status_code == 200, accepted.text
