"""Running an ingest from Home: in a worker thread, its progress polled by the page.

The worker reports through core.progress's `(fraction, message)` into a `Reported`
holder; only the page's own thread touches Streamlit. A failure is told in words a user
can act on: what happened, and the offline path (the CSV upload, ADEME's export page).
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import streamlit as st

from core.config import Settings
from core.data import ingest
from core.errors import DpeError

ADEME_DATASET_PAGE = "https://data.ademe.fr/datasets/dpe-v2-tertiaire-2"
POLL_S = 0.3
# How a failed connection reads in core's message (httpx / the OS resolver).
UNREACHABLE = ("unreachable", "name or service not known", "name resolution", "connect")


class Reported:
    """The last (fraction, message) a worker reported; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0.0, "starting")

    def __call__(self, fraction: float, message: str) -> None:
        with self._lock:
            self._last = (min(1.0, max(0.0, float(fraction))), message)

    def last(self) -> tuple[float, str]:
        with self._lock:
            return self._last


def run_with_progress(work, label: str):
    """`work(progress)` in a worker thread, a progress bar polled meanwhile; its result.
    Raises what `work` raised."""
    reported = Reported()
    started = time.monotonic()
    bar = st.progress(0.0, text="starting")
    with ThreadPoolExecutor(max_workers=1) as pool:
        job = pool.submit(work, reported)
        while not job.done():
            fraction, message = reported.last()
            bar.progress(fraction, text=f"{label}: {message} · {time.monotonic() - started:.0f} s")
            time.sleep(POLL_S)
    bar.empty()
    return job.result()


def ingest_source(settings: Settings, source: str, limit: int | None, label: str) -> dict:
    return run_with_progress(
        lambda progress: ingest.ingest(settings, source=source, limit=limit, progress=progress),
        label,
    )


def fetch_problem(settings: Settings, source: str, error: DpeError) -> str:
    """What to tell when fetching from the ADEME API failed (markdown)."""
    host = urlparse(source).hostname or source
    text = str(error).lower()
    if any(word in text for word in UNREACHABLE):
        happened = (
            f"**{host} could not be reached**: this machine seems to be offline, or its name "
            "does not resolve here."
        )
    elif "http" in text and "answered" in text:
        happened = f"**{host} answered with an error**: the ADEME API may be down for a while."
    else:
        happened = f"**The records from {host} could not be read**: {error}."
    return (
        f"{happened} Without the API, download the CSV export from ADEME's dataset page "
        f"([DPE tertiaire]({ADEME_DATASET_PAGE}), *Export* → CSV) and upload it in the "
        "**Upload an ADEME CSV** tab of *Ingest records* below."
    )
