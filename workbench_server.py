"""The workbench as the deployment serves it: app.py (the Streamlit frame and its pages)
behind ui/gate.py, which refuses uploads before login and, behind a login proxy, any request
that does not come from it. `streamlit run workbench_server.py` (or `dpe workbench`) serves
it; Streamlit's own options (--server.address, --server.port, .streamlit/config.toml) apply.
`streamlit run app.py` still serves the pages alone, without the gate (development)."""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from ui.gate import LoginGate

app = st.App(Path(__file__).with_name("app.py"), middleware=[Middleware(LoginGate)])
