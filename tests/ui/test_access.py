"""ui.access: in production the workbench shows no error details and no page without a
signed-in user (Streamlit's OIDC login, or an authenticating reverse proxy); in
development it opens as before. The real app.py, run in-process (AppTest)."""

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from core.config import get_settings
from tests.support.cli import ROOT
from tests.support.pages import texts, use_home

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "not-a-real-secret",
    "client_id": "dpe-workbench",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://id.example.org/.well-known/openid-configuration",
}


@pytest.fixture
def workbench(tmp_path, monkeypatch):
    """An empty install; yields a function setting DPE_ENV (and the login kind)."""
    home = tmp_path / "home"
    home.mkdir()
    use_home(monkeypatch, home)
    shown = config.get_option("client.showErrorDetails")

    def set_env(env: str, login: str = "oidc") -> AppTest:
        monkeypatch.setenv("DPE_ENV", env)
        monkeypatch.setenv("DPE_WORKBENCH_LOGIN", login)
        monkeypatch.setenv("DPE_API_TOKEN", "a-production-token")
        get_settings.cache_clear()
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)

    yield set_env
    config.set_option("client.showErrorDetails", shown)  # process-wide: put it back
    get_settings.cache_clear()


def opened(app: AppTest) -> bool:
    """The Home page ran (its heading is drawn by the frame)."""
    return "DPE workbench" in texts(app.title)


def test_development_opens_without_login_and_keeps_error_details(workbench):
    app = workbench("development").run()
    assert opened(app) and not app.exception
    assert config.get_option("client.showErrorDetails") != "none"


def test_production_without_a_login_configured_shows_no_page(workbench):
    app = workbench("production").run()
    assert not opened(app) and not app.exception
    assert "without a login" in texts(app.warning)
    assert "secrets.toml" in texts(app.warning)
    assert config.get_option("client.showErrorDetails") == "none"


def test_production_with_oidc_asks_to_log_in_then_opens(workbench):
    app = workbench("production")
    app.secrets["auth"] = AUTH
    app.user = {"is_logged_in": False}
    app.run()
    assert not opened(app) and not app.exception
    assert [button.label for button in app.button] == ["Log in"]

    app = workbench("production")
    app.secrets["auth"] = AUTH
    app.user = {"is_logged_in": True, "email": "analyst@example.org"}
    app.run()
    assert opened(app) and not app.exception
    assert "Signed in as analyst@example.org" in texts(app.sidebar.caption)


def test_production_behind_a_proxy_needs_its_user_header(workbench):
    app = workbench("production", login="proxy").run()
    assert not opened(app) and not app.exception
    assert "reverse proxy" in texts(app.warning)
    assert "DPE_WORKBENCH_PROXY_SECRET" in texts(app.warning)


def test_the_proxy_user_header_counts_only_with_the_proxy_secret():
    from pydantic import SecretStr

    from core.config import Settings
    from ui.access import proxy_user

    settings = Settings(
        _env_file=None, workbench_login="proxy", workbench_proxy_secret=SecretStr("s3cret-xyz")
    )
    forged = {"X-Forwarded-Email": "intruder@example.org"}
    assert proxy_user(forged, settings) is None
    assert proxy_user({**forged, "X-DPE-Proxy-Secret": "guess"}, settings) is None
    proxied = {**forged, "x-dpe-proxy-secret": "s3cret-xyz"}
    assert proxy_user(proxied, settings) == "intruder@example.org"
    unset = Settings(_env_file=None, workbench_login="proxy")
    assert proxy_user({**forged, "X-DPE-Proxy-Secret": ""}, unset) is None
