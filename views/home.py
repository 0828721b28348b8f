"""Home: what the workbench is for, the status of data, model and services, getting data."""

from pathlib import Path

import streamlit as st

from core.data import ingest
from core.errors import DpeError
from core.lifecycle import pipeline_log
from ui import frame, runs, status
from ui.format import marker, model_label, short, when
from ui.ingest_run import ADEME_DATASET_PAGE, fetch_problem, ingest_source
from ui.links import api_docs_url, mlflow_ui_url, model_versions_url

context = frame.context()
settings, dataset, manifest = context.settings, context.dataset, context.champion

st.markdown(
    "Estimate the **energy label (DPE, classes A–G)** of a tertiary building from the ADEME "
    "open data « DPE tertiaire », and run the model behind it like a product: explore the "
    "data, train and compare models tracked in MLflow, promote a champion, predict one "
    "building or a whole CSV, watch drift. The same champion is served to programs by the API."
)
mlflow = status.mlflow_status(settings)
api = status.api_status(settings)


def dataset_card() -> None:
    st.markdown(":material/database: **Dataset**")
    if dataset:
        st.metric("Records", f"{dataset['rows']:,}")
        st.caption(
            f"{dataset['labelled']:,} labelled · {dataset['rejected']:,} rejected  \n"
            f"version `{short(dataset['dataset_version'])}` · "
            f"ingested {when(dataset['last_ingest_at'])} UTC"
        )
    else:
        st.metric("Records", "none yet")
        st.caption("Get data below.")


def champion_card() -> None:
    st.markdown(":material/trophy: **Champion**")
    if manifest:
        metrics = manifest.get("metrics") or {}
        macro_f1, accuracy = metrics.get("macro_f1"), metrics.get("accuracy")
        st.metric(
            f"{manifest.get('registered_model', 'dpe')} v{manifest.get('model_version')}",
            "—" if macro_f1 is None else f"{macro_f1:.3f}",
            help="Macro-F1 on the test split",
        )
        details = [
            "Macro-F1" + ("" if accuracy is None else f" · accuracy {accuracy:.3f}"),
            f"{model_label(manifest.get('model_family'))} · `{manifest.get('feature_set')}`",
            f"promoted {when(manifest.get('promoted_at'))} UTC",
        ]
        st.caption("  \n".join(details))
    elif context.champion_problem:
        st.warning(context.champion_problem, icon=":material/warning:")
    else:
        st.metric("Model", "none yet")
        st.caption("Train a model, then promote it on Compare.")


def service_card(name: str, service: status.Service, link: tuple[str, str]) -> None:
    st.markdown(f"{marker(service.ready)} **{name}**")
    st.metric("Status", service.state)
    st.link_button(link[0], link[1], disabled=not service.up, icon=":material/open_in_new:")


st.subheader("Status")
cards = st.columns(4)
with cards[0].container(border=True, height="stretch"):
    dataset_card()
with cards[1].container(border=True, height="stretch"):
    champion_card()
with cards[2].container(border=True, height="stretch"):
    runs_url = runs.training_runs_url(settings) if mlflow.up else mlflow_ui_url(settings)
    service_card("MLflow", mlflow, ("Training runs in MLflow", runs_url))
    if mlflow.up:
        st.page_link(model_versions_url(settings), label="Registered model versions")
with cards[3].container(border=True, height="stretch"):
    service_card("API", api, ("Open the API docs", api_docs_url(settings)))
for service in (mlflow, api):
    if not service.up:
        st.warning(service.text, icon=":material/error:")
    elif not service.ready:
        st.info(service.text, icon=":material/hourglass_empty:")

# The last lifecycle pass (core.lifecycle.pipeline), when one ran.
last_pass = pipeline_log.history(settings, limit=1)
if last_pass:
    st.caption(
        f":material/autorenew: Last lifecycle pass {when(last_pass[0]['started'])} UTC: "
        f"**{last_pass[0]['decision'] or last_pass[0].get('status')}** on dataset "
        f"`{short(last_pass[0]['dataset_version'])}`"
    )
    frame.page_link("pipeline", "Lifecycle passes")


# --- getting data ------------------------------------------------------------------------
def run_ingest(source: str, limit: int | None, label: str, from_api: bool) -> None:
    """Ingest while the page shows its progress; the result (or what went wrong) stays on
    screen after the rerun."""
    st.session_state.pop("home_ingest_problem", None)
    st.session_state.pop("home_ingest_result", None)
    try:
        result = ingest_source(settings, source, limit, f"Ingesting {label}")
    except DpeError as error:
        problem = fetch_problem(settings, source, error) if from_api else str(error)
        st.session_state["home_ingest_problem"] = problem
    else:
        st.session_state["home_ingest_result"] = {**result, "label": label}
        status.clear_status()
    st.rerun()


def ingested_message(result: dict) -> str:
    return (
        f"Ingested {result['label']}: {result['rows']:,} records read — "
        f"**{result['added']:,} added, {result['updated']:,} updated, "
        f"{result['unchanged']:,} unchanged** ({result['labelled']:,} labelled, "
        f"{result['duplicates']:,} duplicates, {result['rejected']:,} rejected). "
        f"Dataset version `{short(result['dataset_version'])}`."
    )


def saved_upload(upload) -> Path:
    """The uploaded file on disk, where core's readers take it (removed after use)."""
    uploads = settings.home / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / Path(upload.name).name
    path.write_bytes(upload.getvalue())
    return path


def upload_preview(upload) -> dict:
    """What ingesting `upload` would change ({"added", "updated", "unchanged"}), read
    once per uploaded file."""
    key = f"home_preview_{upload.file_id}"
    if key not in st.session_state:
        path = saved_upload(upload)
        try:
            st.session_state[key] = ingest.preview(settings, str(path))
        finally:
            path.unlink(missing_ok=True)
    return st.session_state[key]


def csv_tab() -> None:
    upload = st.file_uploader(
        "ADEME CSV export",
        type=["csv"],
        key="home_csv",
        max_upload_size=settings.max_upload_mb,
        help=f"At most {settings.max_upload_mb} MB (DPE_MAX_UPLOAD_MB).",
    )
    st.caption(f"Download the export from ADEME's [dataset page]({ADEME_DATASET_PAGE}).")
    if upload is None:
        return
    if upload.size > settings.max_upload_mb * 1024 * 1024:
        st.warning(
            f"{upload.name} is {upload.size / 2**20:,.0f} MB, above the "
            f"{settings.max_upload_mb} MB limit (DPE_MAX_UPLOAD_MB). Ingest it from the "
            f"command line instead: `python -m core ingest --source {upload.name}`.",
            icon=":material/straighten:",
        )
        return
    try:
        preview = upload_preview(upload)
    except DpeError as error:
        st.warning(f"{upload.name} cannot be ingested: {error}", icon=":material/warning:")
        return
    st.markdown(
        f"{upload.name} would add **{preview['added']:,}** new records, update "
        f"**{preview['updated']:,}** and leave **{preview['unchanged']:,}** unchanged."
    )
    confirmed = True
    if preview["updated"]:
        st.warning(
            f"{preview['updated']:,} records of this file are already stored with other values "
            "(same N°DPE): ingesting replaces them with the file's values. The current "
            "dataset version stays available for training and comparison.",
            icon=":material/published_with_changes:",
        )
        confirmed = st.checkbox(
            f"Update the {preview['updated']:,} existing records", key="home_csv_confirm"
        )
    if st.button("Ingest this file", key="home_csv_ingest", type="primary", disabled=not confirmed):
        path = saved_upload(upload)
        try:
            run_ingest(str(path), None, upload.name, from_api=False)
        finally:
            path.unlink(missing_ok=True)


def api_tab() -> None:
    limit = st.number_input(
        "Records to fetch",
        min_value=100,
        max_value=1_000_000,
        value=settings.ingest_limit,
        step=1_000,
        key="home_api_limit",
        help="The ADEME data-fair API is paged; each page is a request.",
    )
    st.caption(f"Source: {settings.source}")
    if st.button("Fetch and ingest", key="home_api_ingest", type="primary"):
        run_ingest(settings.source, int(limit), "from the ADEME API", from_api=True)


st.subheader("Get data" if dataset is None else "Add data")
if dataset is None:
    st.info(
        "No data yet. Fetch records from the ADEME API, or upload an ADEME CSV export "
        "(« DPE tertiaire », official column names, `,` or `;`, UTF-8 or cp1252).",
        icon=":material/inbox:",
    )
if "home_ingest_result" in st.session_state:
    st.success(
        ingested_message(st.session_state["home_ingest_result"]), icon=":material/check_circle:"
    )
if "home_ingest_problem" in st.session_state:
    st.warning(st.session_state["home_ingest_problem"], icon=":material/warning:")
with st.expander("Ingest records", expanded=dataset is None, icon=":material/upload_file:"):
    api_pane, csv_pane = st.tabs(["From the ADEME API", "Upload an ADEME CSV"])
    with api_pane:
        api_tab()
    with csv_pane:
        csv_tab()

# --- next steps --------------------------------------------------------------------------
st.subheader("Next steps")
NEXT_STEPS = (
    ("explore", "Explore the data"),
    ("train", "Train a model"),
    ("compare", "Compare and promote"),
    ("predict", "Predict one building"),
    ("batch", "Predict a CSV"),
    ("monitor", "Watch drift"),
)
for row in (NEXT_STEPS[:3], NEXT_STEPS[3:]):
    for column, (name, text) in zip(st.columns(3), row, strict=True):
        with column:
            frame.page_link(name, text)
st.caption(
    "Every step also runs from the command line: `python -m core ingest | train | promote | "
    "predict | drift` (add `--json` for one JSON object on stdout)."
)
