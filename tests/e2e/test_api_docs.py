"""The API's docs pages in a real browser (Debian chromium through Playwright), the API served
by uvicorn on 127.0.0.1: /docs and /redoc render the routes and load nothing from elsewhere
(issue 23.12: ReDoc's footer drew Redocly's logo from their CDN, broken offline)."""

import sys
import time

import pytest

from tests.e2e.test_workbench import CHROMIUM_ARGS, browser  # noqa: F401  (fixture)
from tests.support.cli import ROOT
from tests.support.servers import free_port, running

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    home = tmp_path_factory.mktemp("api-docs")
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"]
    env = {"DPE_HOME": str(home), "DPE_LOG_PREDICTIONS": "false"}
    url = f"http://127.0.0.1:{port}"
    with running(
        [*command, "--port", str(port)], f"{url}/livez", home / "api.log", env=env, cwd=ROOT
    ):
        yield url


@pytest.mark.parametrize("page, shown", [("/redoc", "API docs by Redocly"), ("/docs", "/predict")])
def test_docs_pages_render_from_this_server_alone(browser, api_url, page, shown):  # noqa: F811
    context = browser.new_context()
    tab = context.new_page()
    outside: list[str] = []
    problems: list[str] = []
    # Every request goes through here: one leaving 127.0.0.1 is noted and refused.
    tab.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(api_url)
            else (outside.append(route.request.url), route.abort())
        ),
    )
    tab.on("console", lambda message: message.type == "error" and problems.append(message.text))
    tab.goto(api_url + page)
    tab.get_by_text(shown).first.wait_for(timeout=30_000)
    tab.get_by_text("/model").first.wait_for(timeout=30_000)
    time.sleep(1.5)  # ReDoc draws its footer logo after the first render
    context.close()
    assert not outside, outside
    assert not problems, problems
