"""ui/gate.py over real sockets: the workbench as deployed (`dpe workbench`, which serves
workbench_server.py) in production on 127.0.0.1.

- OIDC login: a client that is not signed in opens a Streamlit session (the login page) but
  its upload is refused before its body is read; a signed-in browser's upload is accepted.
- Login proxy: without the proxy's secret, a forged `X-Forwarded-Email` gets neither a page
  nor a session; with it, both; the health check stays open to probes.
"""

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.web.server.starlette.starlette_app_utils import (
    create_signed_value,
    generate_xsrf_token_string,
)

from tests.support.servers import free_port, running

pytestmark = pytest.mark.slow

COOKIE_SECRET = "test-cookie-secret-4b1f9e"
PROXY_SECRET = "test-proxy-secret-8c2d7a"
FORGED = {"X-Forwarded-Email": "intruder@example.org"}
# What any client can make for itself: Streamlit's XSRF check compares a header with a cookie.
XSRF = generate_xsrf_token_string()


@contextmanager
def workbench(tmp_path: Path, **env: str):
    """`python -m core workbench` in production; yields its base URL."""
    port = free_port()
    home = tmp_path / "user-home"
    (home / ".streamlit").mkdir(parents=True)
    auth = {
        "redirect_uri": f"http://127.0.0.1:{port}/oauth2callback",
        "cookie_secret": COOKIE_SECRET,
        "client_id": "dpe-workbench",
        "client_secret": "not-used",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    lines = ["[auth]", *(f"{key} = {json.dumps(value)}" for key, value in auth.items())]
    (home / ".streamlit" / "secrets.toml").write_text("\n".join(lines) + "\n")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DPE_")},
        "HOME": str(home),
        "DPE_HOME": str(tmp_path / "dpe-home"),
        "DPE_HOST": "127.0.0.1",
        "DPE_UI_PORT": str(port),
        "DPE_ENV": "production",
        "DPE_API_TOKEN": "gate-test-token-5e7c1a9f3b2d",
        **env,
    }
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "core", "workbench"]
    with running(command, f"{url}/_stcore/health", tmp_path / "workbench.log", environment, 90):
        yield url


@asynccontextmanager
async def streamlit_session(url: str, headers: dict[str, str]):
    """A Streamlit session opened as a browser opens it (WebSocket, then a first run),
    alive until the block ends; yields its id."""
    address = url.replace("http://", "ws://") + "/_stcore/stream"
    async with websockets.connect(
        address, subprotocols=["streamlit"], additional_headers=headers, open_timeout=20
    ) as connection:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        await connection.send(rerun.SerializeToString())
        while True:
            message = ForwardMsg()
            message.ParseFromString(await asyncio.wait_for(connection.recv(), 30))
            if message.WhichOneof("type") == "new_session":
                break
        yield message.new_session.initialize.session_id


async def upload(url: str, session: str, cookies: dict[str, str], headers: dict | None = None):
    async with httpx.AsyncClient(cookies={"_streamlit_xsrf": XSRF, **cookies}) as client:
        return await client.put(
            f"{url}/_stcore/upload_file/{session}/file-1",
            files={"file": ("records.csv", b"x" * 100_000, "text/csv")},
            headers={"X-Xsrftoken": XSRF, **(headers or {})},
            timeout=30,
        )


async def answer_before_the_body(
    url: str, session: str, size: int, cookie: str = "", headers: dict | None = None
) -> str:
    """Send only the headers of a `size`-byte upload (with `cookie` and `headers`); the whole
    answer, read until the server closes, or '' when it waits for the body (it would read
    it). A real upload refused unread can lose its answer to a reset on a loaded machine: the
    body is still in flight when the server closes."""
    host, port = url.removeprefix("http://").split(":")
    request = (
        f"PUT /_stcore/upload_file/{session}/file-2 HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"X-Xsrftoken: {XSRF}\r\nCookie: _streamlit_xsrf={XSRF}{cookie}\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        + "Content-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request.encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        return answer.decode(errors="replace")
    except TimeoutError:
        return ""
    finally:
        writer.close()


def login_cookie(url: str) -> dict[str, str]:
    """The cookie Streamlit sets after a successful st.login, signed with the cookie_secret."""
    payload = json.dumps({"origin": url, "is_logged_in": True, "email": "analyst@example.org"})
    signed = create_signed_value(COOKIE_SECRET, "_streamlit_user", payload)
    return {"_streamlit_user": signed.decode("latin-1")}


def test_uploads_need_a_signed_in_user(tmp_path):
    async def attempts(url: str) -> None:
        async with streamlit_session(url, {}) as session:  # the login page's session
            # Refused before a byte of the body is read: the limit before login is zero.
            refused = await answer_before_the_body(url, session, 20 * 2**20)
            assert refused.startswith("HTTP/1.1 401 Unauthorized\r\n"), refused
            assert "\r\nsign in before uploading a file\r\n" in refused, refused
            unsigned = "; _streamlit_user=is_logged_in"
            refused = await answer_before_the_body(url, session, 100_000, unsigned)
            assert refused.startswith("HTTP/1.1 401 Unauthorized\r\n"), refused

            accepted = await upload(url, session, login_cookie(url))
            assert accepted.status_code == 204, accepted.text

    with workbench(tmp_path) as url:
        asyncio.run(attempts(url))


def test_behind_the_proxy_only_its_requests_reach_the_workbench(tmp_path):
    proxy = {"X-DPE-Proxy-Secret": PROXY_SECRET, **FORGED}

    async def attempts(url: str) -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with streamlit_session(url, FORGED):
                pass
        assert refused.value.response.status_code == 403
        async with streamlit_session(url, proxy) as session:
            refused = await answer_before_the_body(url, session, 100_000, headers=FORGED)
            assert refused.startswith("HTTP/1.1 403 Forbidden\r\n"), refused
            assert (await upload(url, session, {}, headers=proxy)).status_code == 204

    with workbench(
        tmp_path, DPE_WORKBENCH_LOGIN="proxy", DPE_WORKBENCH_PROXY_SECRET=PROXY_SECRET
    ) as url:
        assert httpx.get(f"{url}/_stcore/health", timeout=10).status_code == 200  # probes
        page = httpx.get(url, headers=FORGED, timeout=10)
        assert page.status_code == 403 and "login proxy" in page.text
        wrong = {**FORGED, "X-DPE-Proxy-Secret": "a-guess"}
        assert httpx.get(url, headers=wrong, timeout=10).status_code == 403
        assert httpx.get(url, headers=proxy, timeout=10).status_code == 200
        asyncio.run(attempts(url))


def test_proxy_secret_unset_lets_no_request_through(tmp_path):
    with workbench(tmp_path, DPE_WORKBENCH_LOGIN="proxy") as url:
        assert httpx.get(url, headers=FORGED, timeout=10).status_code == 403
        header = {"X-DPE-Proxy-Secret": "", **FORGED}
        assert httpx.get(url, headers=header, timeout=10).status_code == 403
