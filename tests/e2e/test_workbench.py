"""The workbench in a real browser: Debian chromium driven by Playwright, the app served by
`streamlit run app.py` on 127.0.0.1 over a DPE_HOME holding data (the shared ADEME sample
when DPE_SHARED_DATA points at it, generated records otherwise) and a local SQLite MLflow.

One walk through the product: Home -> Explore -> Train with the default grid search ->
Compare -> promote -> Predict one building -> Batch predict a CSV and download the result
-> Monitor. No page may show a Streamlit exception or an error box, and no request may
leave 127.0.0.1 (fonts, scripts and icons are served by the workbench itself). A
screenshot of every page goes to docs/screenshots/ (stable names, linked from the README).
"""

import io
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
from playwright.sync_api import expect

from core.config import Settings
from core.data.ingest import ingest
from tests.support.cli import ROOT
from tests.support.servers import free_port, running
from tooling.synth import write_csv
from ui.labels import label

# The walk trains with a grid search: more than the suite's default 300 s on busy cores.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECTOR = "W : Administrations, banques, bureaux"
RUN_TIMEOUT_MS = 120_000
TRAIN_TIMEOUT_MS = 300_000  # a grid search on 2 busy cores
SCREENSHOTS = ROOT / "docs" / "screenshots"
LOOPBACK = {"127.0.0.1"}


def source_csv(tmp: Path) -> Path:
    """The shared ADEME sample when present, else generated records in the same format."""
    shared = os.environ.get("DPE_SHARED_DATA")
    if shared and (Path(shared) / "dpe_tertiaire_sample.csv").exists():
        return Path(shared) / "dpe_tertiaire_sample.csv"
    return write_csv(tmp / "generated.csv", 2_000, seed=7)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian chromium is not installed: `sudo apt-get install chromium` "
            "(or `make system-deps` as root)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def workbench(tmp_path_factory):
    """`streamlit run app.py` on a free loopback port over a DPE_HOME with data."""
    tmp = tmp_path_factory.mktemp("e2e")
    home = tmp / "home"
    csv_path = source_csv(tmp)
    env = {
        "DPE_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "DPE_MODEL_STORE_URI": f"file://{home / 'store'}",
        # Nothing listens there: the pages must say so with a warning, not an error box.
        "DPE_API_URL": f"http://127.0.0.1:{free_port()}",
        "DPE_MLFLOW_UI_URL": f"http://127.0.0.1:{free_port()}",
    }
    settings = Settings(
        _env_file=None,
        home=home,
        mlflow_tracking_uri=env["MLFLOW_TRACKING_URI"],
        model_store_uri=env["DPE_MODEL_STORE_URI"],
    )
    ingested = ingest(settings, source=csv_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with running(
        command, f"{url}/_stcore/health", tmp / "streamlit.log", env=env, timeout_s=60, cwd=ROOT
    ):
        yield {"url": url, "csv": csv_path, "ingested": ingested, "tmp": tmp}


class Walk:
    """The browser page, with Streamlit-aware waits, checks and screenshots."""

    def __init__(self, page, shots: Path):
        self.page = page
        self.shots = shots
        self.count = 0
        self.started = self.last = time.monotonic()
        self.steps: list[str] = []

    def idle(self, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
        """Wait until the script run is over (Streamlit's status widget gone)."""
        time.sleep(0.4)
        self.page.wait_for_selector(
            '[data-testid="stStatusWidget"]', state="detached", timeout=timeout_ms
        )
        time.sleep(0.3)

    def see(self, text: str, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
        self.page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)

    def check_clean(self, name: str) -> None:
        exceptions = self.page.locator('[data-testid="stException"]')
        errors = self.page.locator('[data-testid="stAlertContentError"]')
        assert exceptions.count() == 0, f"{name}: {exceptions.first.inner_text()}"
        assert errors.count() == 0, f"{name}: {errors.first.inner_text()}"

    def shot(self, name: str) -> Path:
        """A screenshot of the page as shown (Streamlit scrolls inside its own container)."""
        self.count += 1
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def done(self, name: str) -> None:
        self.idle()
        self.check_clean(name)
        self.shot(name)
        now = time.monotonic()
        self.steps.append(f"{name} {now - self.last:.1f}s")
        self.last = now

    def go(self, link: str) -> None:
        self.page.locator('[data-testid="stSidebarNav"]').get_by_role(
            "link", name=link, exact=True
        ).click()
        self.idle()

    def choose(self, label: str, option: str) -> None:
        box = self.page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
        box.click()
        self.page.get_by_role("option", name=option, exact=True).first.click()
        self.idle()

    def number(self, label: str, value: str) -> None:
        field = self.page.locator('[data-testid="stNumberInput"]').filter(has_text=label).first
        field.locator("input").fill(value)
        field.locator("input").press("Tab")

    def button(self, name: str) -> None:
        self.page.get_by_role("button", name=name).first.click()


def test_walk_through_the_workbench(browser, workbench, capsys):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(RUN_TIMEOUT_MS)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    walk = Walk(page, SCREENSHOTS)
    rows = workbench["ingested"]["rows"]

    # Home: status of data (records ingested), champion (none yet) and services (warnings).
    page.goto(workbench["url"])
    walk.see("DPE workbench")
    walk.see(f"{rows:,}")
    walk.see("does not answer")
    walk.done("home")

    # Explore: KPIs and charts, then a filter changes the numbers.
    walk.go("Explore")
    walk.see("Label distribution")
    records = page.locator('[data-testid="stMetric"]').filter(has_text="Records").first
    before = records.inner_text()
    walk.done("explore")
    labels = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label("etiquette_dpe"))
    labels.click()
    page.get_by_role("option", name="A", exact=True).click()
    page.keyboard.press("Escape")
    expect(records).not_to_have_text(before, timeout=RUN_TIMEOUT_MS)
    walk.idle()
    walk.check_clean("explore_filtered")

    # Train with the page's defaults: a random forest, the grid search, with its estimate.
    walk.go("Train")
    walk.see("Roughly")
    walk.button("Train")
    walk.see("Open the run in the MLflow UI", timeout_ms=TRAIN_TIMEOUT_MS)
    walk.see("search: Grid search")
    walk.done("train")

    # Compare: the run is listed; promote it after the confirmation.
    walk.go("Compare")
    walk.see("No champion yet")
    walk.see("Building-only runs")
    walk.shot("compare")
    page.get_by_text("I confirm").click()
    walk.idle()
    walk.button("Promote to champion")
    walk.see("is champion version 1", timeout_ms=RUN_TIMEOUT_MS)
    walk.done("compare_promoted")

    # Predict one building.
    walk.go("Predict")
    walk.see("Predict the label")
    walk.choose(label("secteur_activite"), SECTOR)
    walk.number(label("surface_utile"), "850")
    walk.number(label("annee_construction"), "1965")
    walk.button("Predict the label")
    walk.see("Predicted label:")
    walk.see("Answered by champion dpe v1")
    walk.done("predict")

    # Batch predict the CSV and download the result.
    walk.go("Batch predict")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(workbench["csv"])
    )
    walk.see("Preview")
    walk.idle()
    walk.button("Validate and predict")
    walk.see("Validation report")
    walk.see("Distribution of predicted labels")
    walk.idle()
    with page.expect_download() as download:
        walk.button("Download the results (CSV)")
    target = workbench["tmp"] / "predicted.csv"
    download.value.save_as(str(target))
    walk.done("batch_predict")

    # Monitor: the champion's drift page over what the pages predicted.
    walk.go("Monitor")
    walk.see("Monitor drift")
    walk.done("monitor")

    # Pipeline: no automated pass yet; the page says how to run one.
    walk.go("Pipeline")
    walk.see("No pass yet")
    walk.done("pipeline")
    context.close()

    predicted = pd.read_csv(io.BytesIO(target.read_bytes()), dtype=str, keep_default_na=False)
    assert len(predicted) == rows
    assert {"predicted_label", "proba_A", "proba_G", "error"} <= set(predicted.columns)
    valid = predicted[predicted["error"] == ""]
    assert len(valid) > 0 and set(valid["predicted_label"]) <= set("ABCDEFG")
    outside = sorted({url for url in requested if not _on_loopback(url)})
    assert not outside, f"requests left 127.0.0.1: {outside[:10]}"
    with capsys.disabled():
        print(f"\ne2e screenshots: {SCREENSHOTS} ({walk.count} pages)")
        print(f"e2e steps: {', '.join(walk.steps)}")


def _on_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob") or parts.hostname in LOOPBACK
