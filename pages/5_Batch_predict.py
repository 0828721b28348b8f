"""Batch predict: upload a CSV of buildings, check it, predict every valid row, download."""

import streamlit as st

from core import predict, workbench
from core.errors import DpeError
from core.ingest import read_csv
from ui import charts, common

settings = common.setup("Batch predict", ":material/table_view:")
st.title("Batch predict a CSV")

manifest, problem = common.champion_manifest(settings)
if manifest is None:
    if problem:
        st.warning(problem, icon=":material/warning:")
    else:
        common.no_champion("Batch predict")
    st.stop()

st.caption(
    "A CSV of buildings with ADEME column names (`Secteur_activité`, `Surface_utile`…) or "
    "snake_case ones (`secteur_activite`…), `,` or `;`, UTF-8 or cp1252. Every row comes back: "
    "the predicted label and probabilities, or the reason it was not predicted."
)
limit_mb = settings.max_upload_mb
upload = st.file_uploader(
    "CSV of buildings",
    type=["csv"],
    key="batch_upload",
    max_upload_size=limit_mb,
    help=f"At most {limit_mb} MB (DPE_MAX_UPLOAD_MB).",
)
if upload is None:
    st.stop()
if upload.size > limit_mb * 1024 * 1024:
    st.warning(
        f"{upload.name} is {upload.size / 2**20:,.1f} MB, above the {limit_mb} MB upload limit "
        "(DPE_MAX_UPLOAD_MB). Split it, or predict it from the command line: "
        f"`python -m core predict --input {upload.name} --output predicted.csv`.",
        icon=":material/straighten:",
    )
    st.stop()


@st.cache_data(max_entries=2, show_spinner="Reading the CSV…")
def read_upload(file_id: str, _data: bytes):
    return read_csv(_data)


try:
    frame = read_upload(upload.file_id, upload.getvalue())
except DpeError as error:
    st.warning(f"{upload.name} cannot be read: {error}", icon=":material/warning:")
    st.stop()

used = [entry["name"] for entry in manifest.get("input_schema", [])]
fields, _ = workbench.recognised_columns(frame.columns)
found = [name for name in used if name in fields]
st.subheader("Preview")
st.caption(
    f"{len(frame):,} rows · {len(frame.columns)} columns · {len(found)} of the "
    f"{len(used)} fields the champion uses: {', '.join(f'`{f}`' for f in found) or 'none'}."
)
if used and not found:
    st.warning(
        "None of the columns is a field the champion uses: is this an ADEME export? Rows "
        "would be predicted from nothing but the model's defaults.",
        icon=":material/warning:",
    )
st.dataframe(frame.head(20), hide_index=True, key="batch_preview")

champion, problem = common.load_champion(settings, manifest)
if champion is None:
    st.warning(problem, icon=":material/warning:")
    st.stop()

if st.button("Validate and predict", key="batch_run", type="primary", icon=":material/play_arrow:"):
    bar = st.progress(0.0, text="validating the rows")

    def progress(fraction: float) -> None:
        bar.progress(min(1.0, fraction), text=f"predicting: {fraction:.0%}")

    predicted = predict.predict_frame(champion, frame, source="batch", progress=progress)
    bar.progress(1.0, text="done")
    st.session_state["batch_result"] = {
        "file_id": upload.file_id,
        "name": upload.name,
        "predicted": predicted,
        "model_version": champion.model_version,
    }

answer = st.session_state.get("batch_result")
if answer is None or answer["file_id"] != upload.file_id:
    st.stop()

predicted = answer["predicted"]
counts = predict.summary(predicted)
st.subheader("Validation report")
c1, c2, c3 = st.columns(3)
c1.metric("Rows", f"{counts['rows']:,}")
c2.metric("Predicted", f"{counts['predicted']:,}")
c3.metric("Rejected", f"{counts['rejected']:,}")
if counts["rejected"]:
    by_rule, rejected_rows = workbench.rejection_report(predicted)
    st.markdown("**Why rows were rejected** (a row may break several rules)")
    st.dataframe(
        by_rule.rename(columns={"rule": "Rule", "rows": "Rows", "example": "Example"}),
        hide_index=True,
        key="batch_reasons",
    )
    with st.expander(f"The {len(rejected_rows):,} rejected rows"):
        st.dataframe(rejected_rows, hide_index=True, key="batch_rejected_rows")
else:
    st.success("Every row is valid and was predicted.", icon=":material/check_circle:")

st.subheader("Predicted labels")
st.plotly_chart(
    charts.label_bars(workbench.label_counts(predicted), "Distribution of predicted labels"),
    key="batch_chart_labels",
)
st.download_button(
    "Download the results (CSV)",
    data=lambda: predict.to_csv_bytes(predicted),
    file_name=answer["name"].rsplit(".", 1)[0] + "_predicted.csv",
    mime="text/csv",
    key="batch_download",
    icon=":material/download:",
    type="primary",
    on_click="ignore",
)
st.caption(
    f"Predicted by champion v{answer['model_version']}: the input columns, then "
    "`predicted_label`, `proba_A`…`proba_G` and `error` (empty when predicted)."
)
