"""Who may see the workbench. In production (DPE_ENV=production) the browser gets no error
details and every page needs a signed-in user, since the workbench can promote models:

- `DPE_WORKBENCH_LOGIN=oidc` (default): Streamlit's own login (`st.login`) with the OIDC
  provider configured in `.streamlit/secrets.toml` (`[auth]`: redirect_uri, cookie_secret,
  client_id, client_secret, server_metadata_url);
- `DPE_WORKBENCH_LOGIN=proxy`: an authenticating reverse proxy (oauth2-proxy) in front,
  which passes the user in `X-Forwarded-Email` / `X-Forwarded-User` and proves it is the
  proxy with `DPE_WORKBENCH_PROXY_SECRET` in `X-DPE-Proxy-Secret` (ui/gate.py refuses any
  other request before Streamlit sees it; this check is the second line).

Without either, production pages are refused with what to configure.
"""

from collections.abc import Mapping

import streamlit as st

from core.config import Settings
from ui.gate import from_proxy

PROXY_USER_HEADERS = ("X-Forwarded-Email", "X-Forwarded-User")
OIDC_KEYS = ("redirect_uri", "cookie_secret")  # the shared [auth] settings st.login requires


def allowed(settings: Settings) -> bool:
    """True when this run may show pages; otherwise it has drawn why (or a login button)."""
    if settings.env != "production":
        return True
    # Errors become "an error occurred" for the user; the server log keeps the traceback.
    st.set_option("client.showErrorDetails", "none")
    if settings.workbench_login == "proxy":
        return _proxied_user(settings)
    if not _oidc_configured():
        st.warning(
            "This workbench runs in production (DPE_ENV=production) without a login, so it "
            "shows nothing. Configure an OIDC provider in .streamlit/secrets.toml ([auth]: "
            "redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url), or "
            "put it behind oauth2-proxy and set DPE_WORKBENCH_LOGIN=proxy.",
            icon=":material/lock:",
        )
        return False
    if not st.user.is_logged_in:
        st.info("Sign in to use the DPE workbench.", icon=":material/lock:")
        st.button("Log in", on_click=st.login, type="primary")
        return False
    with st.sidebar:
        st.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
        st.button("Log out", on_click=st.logout)
    return True


def _oidc_configured() -> bool:
    try:
        auth = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml at all
        return False
    if not auth:
        return False
    return all(auth.get(key) for key in OIDC_KEYS)


def proxy_user(headers: Mapping[str, str], settings: Settings) -> str | None:
    """The user the login proxy names; None unless the request proves it comes from the
    proxy (anyone reaching the port could send X-Forwarded-Email)."""
    headers = {name.lower(): value for name, value in headers.items()}
    if not from_proxy(headers, settings):
        return None
    return next((headers[n.lower()] for n in PROXY_USER_HEADERS if headers.get(n.lower())), None)


def _proxied_user(settings: Settings) -> bool:
    user = proxy_user(dict(st.context.headers), settings)
    if user:
        st.sidebar.caption(f"Signed in as {user}")
        return True
    if not settings.workbench_proxy_secret.get_secret_value():
        problem = "DPE_WORKBENCH_PROXY_SECRET is not set, so no request can prove it comes from it"
    else:
        problem = "the request carries no user from it"
    st.warning(
        "This workbench expects its login from a reverse proxy (DPE_WORKBENCH_LOGIN=proxy), "
        f"but {problem}: open it through the proxy's address.",
        icon=":material/lock:",
    )
    return False
