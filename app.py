"""DPE workbench: the Streamlit frame (`streamlit run app.py`, or `make run`).

Page config, navigation, sidebar and each page's guard live here and in ui/frame.py;
the files in views/ only draw their widgets. (Not `pages/`: beside the main script,
Streamlit takes a `pages/` folder for its legacy multipage mode and runs those files
without this frame.)
"""

from core.config import get_settings
from ui import access, frame

if access.allowed(get_settings()):  # production: a signed-in user, no error details
    frame.open_page(frame.navigation())
