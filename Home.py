"""DPE workbench — Home: what it is for, the status of data, model and services, first steps.

Run with `streamlit run Home.py` (or `make run`, which also starts MLflow and the API).
The other pages are the files in pages/.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import streamlit as st

from core import ingest
from core.errors import DpeError
from ui import common

settings = common.setup("Home", ":material/home:")

st.title("DPE workbench")
st.markdown(
    "Estimate the **energy label (DPE, classes A–G)** of a tertiary building from the ADEME "
    "open data « DPE tertiaire », and run the model behind it like a product: explore the "
    "data, train and compare models tracked in MLflow, promote a champion, predict one "
    "building or a whole CSV. The same champion is served to programs by the API."
)

status, data_problem = common.dataset_status(settings)
manifest, champion_problem = common.champion_manifest(settings)
mlflow_ok, mlflow_text = common.mlflow_status(settings)
api_ok, api_text = common.api_status(settings)

# --- status ------------------------------------------------------------------------------
st.subheader("Status")
data_col, model_col, mlflow_col, api_col = st.columns(4)
with data_col.container(border=True, height="stretch"):
    st.markdown(":material/database: **Dataset**")
    if status:
        st.metric("Records", f"{status['rows']:,}")
        st.caption(
            f"{status['labelled']:,} labelled · {status['rejected']:,} rejected  \n"
            f"version `{common.short(status['dataset_version'])}` · "
            f"ingested {status['last_ingest_at'][:16].replace('T', ' ')} UTC"
        )
    elif data_problem:
        st.warning(data_problem, icon=":material/hourglass_empty:")
    else:
        st.metric("Records", "none yet")
        st.caption("Get data below.")
with model_col.container(border=True, height="stretch"):
    st.markdown(":material/trophy: **Champion**")
    if manifest:
        metrics = manifest.get("metrics") or {}
        macro_f1 = metrics.get("macro_f1")
        accuracy = metrics.get("accuracy")
        st.metric(
            f"{manifest.get('registered_model', 'dpe')} v{manifest.get('model_version')}",
            "—" if macro_f1 is None else f"{macro_f1:.3f}",
            help="macro-F1 on the test split",
        )
        details = [
            "macro-F1" + ("" if accuracy is None else f" · accuracy {accuracy:.3f}"),
            " · ".join(str(d) for d in (manifest.get("model_family"), manifest.get("feature_set"))),
            f"promoted {str(manifest.get('promoted_at', ''))[:16].replace('T', ' ')} UTC",
        ]
        st.caption("  \n".join(details))
    elif champion_problem:
        st.warning(champion_problem, icon=":material/warning:")
    else:
        st.metric("Model", "none yet")
        st.caption("Train a model, then promote it on Compare.")
for column, name, ok, url, label in (
    (
        mlflow_col,
        ":material/science: **MLflow**",
        mlflow_ok,
        common.mlflow_ui_url(settings),
        "Open the MLflow UI",
    ),
    (api_col, ":material/api: **API**", api_ok, common.api_docs_url(settings), "Open the API docs"),
):
    with column.container(border=True, height="stretch"):
        st.markdown(name)
        st.metric("Status", "online" if ok else "offline")
        st.link_button(label, url, disabled=not ok, icon=":material/open_in_new:")
for ok, text in ((mlflow_ok, mlflow_text), (api_ok, api_text)):
    if not ok:
        st.warning(text, icon=":material/error:")


# --- getting data ------------------------------------------------------------------------
def run_ingest(source: str, limit: int | None, label: str) -> None:
    """Ingest in a worker thread while the page shows it working; the result (or the
    one-line problem) stays on screen after the rerun."""
    with st.status(f"Ingesting {label}…", expanded=True) as box:
        bar = st.progress(0.0, text="starting")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            work = pool.submit(ingest.ingest, settings, source=source, limit=limit, progress=False)
            while not work.done():
                elapsed = time.monotonic() - started
                # core.ingest reports no fraction: the bar only shows it is alive.
                bar.progress(
                    elapsed / (elapsed + 20), text=f"reading, checking, storing… {elapsed:.0f} s"
                )
                time.sleep(0.5)
        try:
            result = work.result()
        except DpeError as error:
            bar.empty()
            box.update(label="Ingest failed", state="error")
            st.session_state["home_ingest_problem"] = str(error)
            st.session_state.pop("home_ingest_result", None)
            st.rerun()
        bar.progress(1.0, text=f"done in {time.monotonic() - started:.0f} s")
        box.update(label="Ingest finished", state="complete", expanded=False)
    st.session_state["home_ingest_result"] = result
    st.session_state.pop("home_ingest_problem", None)
    common.clear_status()
    st.rerun()


st.subheader("Get data" if status is None else "Add data")
if status is None:
    st.info(
        "No data yet. Fetch records from the ADEME API, or upload an ADEME CSV export "
        "(« DPE tertiaire », official column names, `,` or `;`, UTF-8 or cp1252).",
        icon=":material/inbox:",
    )
if "home_ingest_result" in st.session_state:
    result = st.session_state["home_ingest_result"]
    st.success(
        f"Ingested: {result['rows']:,} records ({result['labelled']:,} labelled, "
        f"{result['duplicates']:,} duplicates, {result['rejected']:,} rejected). "
        f"Dataset version `{common.short(result['dataset_version'])}`.",
        icon=":material/check_circle:",
    )
if "home_ingest_problem" in st.session_state:
    st.warning(st.session_state["home_ingest_problem"], icon=":material/warning:")

with st.expander("Ingest records", expanded=status is None, icon=":material/upload_file:"):
    api_tab, csv_tab = st.tabs(["From the ADEME API", "Upload an ADEME CSV"])
    with api_tab:
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
            run_ingest(settings.source, int(limit), "from the ADEME API")
    with csv_tab:
        upload = st.file_uploader(
            "ADEME CSV export",
            type=["csv"],
            key="home_csv",
            max_upload_size=settings.max_upload_mb,
            help=f"At most {settings.max_upload_mb} MB (DPE_MAX_UPLOAD_MB).",
        )
        if upload is not None:
            if upload.size > settings.max_upload_mb * 1024 * 1024:
                st.warning(
                    f"{upload.name} is {upload.size / 2**20:,.0f} MB, above the "
                    f"{settings.max_upload_mb} MB limit (DPE_MAX_UPLOAD_MB). Ingest it from the "
                    f"command line instead: `python -m core ingest --source {upload.name}`.",
                    icon=":material/straighten:",
                )
            elif st.button("Ingest this file", key="home_csv_ingest", type="primary"):
                uploads = settings.home / "uploads"
                uploads.mkdir(parents=True, exist_ok=True)
                path = uploads / upload.name.replace("/", "_")
                path.write_bytes(upload.getvalue())
                try:
                    run_ingest(str(path), None, upload.name)
                finally:
                    path.unlink(missing_ok=True)

# --- next steps --------------------------------------------------------------------------
st.subheader("Next steps")
steps = st.columns(5)
steps[0].page_link(common.PAGES["explore"], label="Explore the data", icon=":material/query_stats:")
steps[1].page_link(common.PAGES["train"], label="Train a model", icon=":material/science:")
steps[2].page_link(
    common.PAGES["compare"], label="Compare and promote", icon=":material/compare_arrows:"
)
steps[3].page_link(common.PAGES["predict"], label="Predict one building", icon=":material/sell:")
steps[4].page_link(common.PAGES["batch"], label="Predict a CSV", icon=":material/table_view:")
st.caption(
    "Every step also runs from the command line: `python -m core ingest | train | promote | "
    "predict | drift` (add `--json` for one JSON object on stdout)."
)
