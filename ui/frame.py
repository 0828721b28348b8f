"""The workbench frame: its pages, the sidebar, and the guards a page declares.

app.py draws the frame once per run: page config, navigation, sidebar, the page's heading,
then the guard of what the page needs (data, a champion) before running the page. A page
reads what the frame checked with `context()`; it only draws its own widgets.
"""

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import streamlit as st

from core.config import Settings, get_settings
from ui import runs, status
from ui.format import marker, short
from ui.links import api_docs_url, mlflow_ui_url

# MLflow draws a tqdm bar for every artifact it downloads (a run's figures on Train, the model
# on Promote): in the workbench's log, where nobody watches them. Set DPE's way, it stays off.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

DATA, CHAMPION = "data", "champion"
TAB_ICON = "🏷️"  # an emoji tab icon is drawn in place; a :material/…: one is downloaded
CONTEXT_KEY = "_frame_context"
SIDEBAR_KEY = "_frame_sidebar"  # the sidebar's placeholder, for refresh_sidebar()
# Where the page files are, wherever the package is installed: Streamlit resolves a relative
# page path against the main script's folder, which an installed app.py does not share.
VIEWS_DIR = Path(find_spec("views").origin).parent  # type: ignore[union-attr, arg-type]


@dataclass(frozen=True)
class PageSpec:
    path: str  # as the tests name it: views/<page>.py
    title: str  # in the navigation and the browser tab
    icon: str
    heading: str  # the page's title
    needs: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return str(VIEWS_DIR / Path(self.path).name)


PAGES = {
    "home": PageSpec("views/home.py", "Home", ":material/home:", "DPE workbench"),
    "explore": PageSpec(
        "views/explore.py", "Explore", ":material/query_stats:", "Explore the data", (DATA,)
    ),
    "train": PageSpec("views/train.py", "Train", ":material/science:", "Train a model", (DATA,)),
    "compare": PageSpec(
        "views/compare.py",
        "Compare",
        ":material/compare_arrows:",
        "Compare runs and promote a champion",
    ),
    "predict": PageSpec(
        "views/predict.py", "Predict", ":material/sell:", "Predict one building", (CHAMPION,)
    ),
    "batch": PageSpec(
        "views/batch_predict.py",
        "Batch predict",
        ":material/table_view:",
        "Batch predict a CSV",
        (CHAMPION,),
    ),
    "monitor": PageSpec(
        "views/monitor.py", "Monitor", ":material/monitoring:", "Monitor drift", (CHAMPION,)
    ),
    "pipeline": PageSpec(
        "views/pipeline.py", "Pipeline", ":material/autorenew:", "Lifecycle pipeline"
    ),
}


@dataclass(frozen=True)
class Context:
    """What the frame read for this run: a page that needs data or a champion has it."""

    settings: Settings
    dataset: dict | None  # status of the current dataset version
    champion: dict | None  # the champion's manifest
    champion_problem: str | None  # why the champion could not be read (a page may go on)

    def needed_dataset(self) -> dict:
        """The dataset status, on a page whose spec needs DATA (the guard stopped it without)."""
        if self.dataset is None:
            raise RuntimeError("this page reads the dataset: add DATA to its PageSpec needs")
        return self.dataset

    def needed_champion(self) -> dict:
        """The champion's manifest, on a page whose spec needs CHAMPION."""
        if self.champion is None:
            raise RuntimeError("this page reads the champion: add CHAMPION to its PageSpec needs")
        return self.champion


def context() -> Context:
    return st.session_state[CONTEXT_KEY]


def page_link(name: str, label: str | None = None) -> None:
    spec = PAGES[name]
    st.page_link(spec.file, label=label or spec.title, icon=spec.icon)


def navigation():
    """The st.navigation of the workbench's pages (Home first, the default)."""
    # Before st.navigation: otherwise the browser first takes the page's :material/…: icon
    # as its tab icon, fetched from fonts.gstatic.com (the workbench needs no internet).
    st.set_page_config(page_icon=TAB_ICON, layout="wide")
    pages = [
        st.Page(spec.file, title=spec.title, icon=spec.icon, default=name == "home")
        for name, spec in PAGES.items()
    ]
    return st.navigation(pages)


def spec_of(page) -> PageSpec:
    """The spec of the StreamlitPage st.navigation chose."""
    return next(spec for spec in PAGES.values() if spec.title == page.title)


def open_page(page) -> None:
    """Sidebar, heading and guard of `page`, then the page itself (or the guard's stop)."""
    settings = get_settings()
    dataset, data_problem = status.dataset_status(settings)
    champion, champion_problem = status.champion_manifest(settings)
    spec = spec_of(page)
    st.set_page_config(page_title=f"{spec.title} · DPE workbench")  # adds to navigation()'s
    st.session_state[SIDEBAR_KEY] = st.sidebar.empty()  # redrawn by refresh_sidebar()
    sidebar(settings, (dataset, data_problem), (champion, champion_problem))
    st.title(spec.heading)
    if DATA in spec.needs and dataset is None:
        return no_data(spec.title, data_problem)
    if CHAMPION in spec.needs and champion is None:
        return no_champion(spec.title, champion_problem)
    st.session_state[CONTEXT_KEY] = Context(settings, dataset, champion, champion_problem)
    page.run()


def no_data(what: str, problem: str | None) -> None:
    if problem:
        st.warning(problem, icon=":material/hourglass_empty:")
        return
    st.info(
        f"There is no data yet, so {what} has nothing to show. Ingest the ADEME data or "
        "upload an ADEME CSV export on the Home page.",
        icon=":material/inbox:",
    )
    page_link("home", "Go to Home to get data")


def no_champion(what: str, problem: str | None) -> None:
    if problem:
        st.warning(problem, icon=":material/warning:")
        return
    st.info(
        f"No model has been promoted to champion yet, so {what} cannot run. Train a model, "
        "then promote the best run on the Compare page.",
        icon=":material/trophy:",
    )
    page_link("train", "Train a model")
    page_link("compare", "Compare runs and promote one")


def refresh_sidebar() -> None:
    """Draw the sidebar again from fresh statuses, for a page that changed the dataset or the
    champion while it ran (a pipeline pass): the frame drew the sidebar before the page."""
    status.clear_status()
    settings = get_settings()
    sidebar(settings, status.dataset_status(settings), status.champion_manifest(settings))


def sidebar(settings: Settings, data: tuple, champion: tuple) -> None:
    (dataset, data_problem), (manifest, champion_problem) = data, champion
    with st.session_state[SIDEBAR_KEY].container():
        shown = dataset and (
            f"version `{short(dataset['dataset_version'])}`  \n"
            f"{dataset['rows']:,} records · {dataset['labelled']:,} labelled"
        )
        _sidebar_part(
            "Dataset",
            shown,
            data_problem,
            ":material/hourglass_empty:",
            "No data yet: ingest on the Home page.",
        )
        shown = manifest and _champion_text(manifest)
        _sidebar_part(
            "Champion",
            shown,
            champion_problem,
            ":material/warning:",
            "No champion yet: train, compare, promote.",
        )
        services_sidebar(settings)


def _sidebar_part(title: str, shown, problem: str | None, icon: str, empty: str) -> None:
    """A sidebar part: what is there, else why it cannot be read, else that there is none."""
    st.markdown(f"#### {title}")
    if shown:
        st.markdown(shown)
    elif problem:
        st.warning(problem, icon=icon)
    else:
        st.caption(empty)


def _champion_text(manifest: dict) -> str:
    macro_f1 = (manifest.get("metrics") or {}).get("macro_f1")
    score = f" · macro-F1 {macro_f1:.3f}" if isinstance(macro_f1, int | float) else ""
    return (
        f"{manifest.get('registered_model', 'dpe')} **v{manifest.get('model_version')}**"
        f"{score}  \nrun `{short(manifest.get('run_id'), 8)}`"
    )


def services_sidebar(settings: Settings) -> None:
    mlflow = status.mlflow_status(settings)
    api = status.api_status(settings)
    mlflow_url = runs.training_runs_url(settings) if mlflow.up else mlflow_ui_url(settings)
    st.markdown("#### Services")
    st.markdown(
        f"{marker(mlflow.ready)} [MLflow runs]({mlflow_url}) · {mlflow.state}  \n"
        f"{marker(api.ready)} [API docs]({api_docs_url(settings)}) · {api.state}"
    )
    if not (mlflow.up and api.up):
        st.caption(f"{marker(False)} not answering: see Home for how to start it.")
