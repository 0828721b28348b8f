"""Batch predict: upload a CSV of buildings, check it, predict every valid row, download."""

import streamlit as st

from core.data.csv_source import read_csv
from core.data.schema import LABEL_COLUMN, SNAKE_TO_OFFICIAL
from core.errors import DpeError
from core.serving import batch
from ui import charts, frame, workbench
from ui.format import markdown_text
from ui.labels import label
from ui.serving import load_champion
from ui.template import template_csv

context = frame.context()
settings, manifest = context.settings, context.needed_champion()
input_schema = manifest.get("input_schema", [])

st.caption(
    "A CSV of buildings with ADEME column names (`Secteur_activité`, `Surface_utile`…) or "
    "snake_case ones (`secteur_activite`…), `,` or `;`, UTF-8 or cp1252. Every row comes back: "
    f"the predicted label and probabilities, or the reason it was not predicted. With an "
    f"`{LABEL_COLUMN}` column, the page also says how often the prediction agrees with it."
)
st.download_button(
    "Download a template CSV",
    data=template_csv(input_schema),
    file_name="dpe_batch_template.csv",
    mime="text/csv",
    key="batch_template",
    icon=":material/download:",
    help="The champion's input fields under their ADEME names, with one example row.",
    on_click="ignore",
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
def read_upload(file_id: str, name: str, _data: bytes):
    return read_csv(_data, name)


try:
    uploaded = read_upload(upload.file_id, upload.name, upload.getvalue())
except DpeError as error:
    st.warning(markdown_text(str(error)), icon=":material/warning:")
    st.stop()

champion, problem = load_champion(settings, manifest)
if champion is None:
    st.warning(problem, icon=":material/warning:")
    st.stop()

st.subheader("Preview")
st.caption(f"{len(uploaded):,} rows · {len(uploaded.columns)} columns.")
st.dataframe(uploaded.head(20), hide_index=True, placeholder="", key="batch_preview")


def official_names(names: list[str]) -> str:
    return ", ".join(f"`{SNAKE_TO_OFFICIAL.get(name, name)}`" for name in names)


refused = None
try:
    missing = batch.missing_fields(champion, uploaded.columns)
except DpeError as error:
    refused = f"{upload.name} cannot be predicted: {error}."
    st.error(markdown_text(refused), icon=":material/block:")
else:
    if missing:
        st.warning(
            f"{len(missing)} of the champion's {len(input_schema)} fields are not in the file: "
            f"{official_names(missing)}. Rows are predicted without them, which makes the "
            "predictions less reliable.",
            icon=":material/warning:",
        )

clicked = st.button(
    "Validate and predict",
    key="batch_run",
    type="primary",
    icon=":material/play_arrow:",
    disabled=refused is not None,
)
if clicked:
    bar = st.progress(0.0, text="validating the rows")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(1.0, fraction), text=message)

    try:
        predicted = batch.predict_frame(champion, uploaded, source="batch", progress=progress)
    except DpeError as error:
        bar.empty()
        st.error(
            markdown_text(f"{upload.name} cannot be predicted: {error}."), icon=":material/block:"
        )
        st.stop()
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
counts = batch.summary(predicted)
st.subheader("Validation report")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows", f"{counts['rows']:,}")
c2.metric("Predicted", f"{counts['predicted']:,}")
c3.metric("Rejected", f"{counts['rejected']:,}")
c4.metric("Predicted with a warning", f"{counts['warned']:,}")
agreement = counts["agreement"]
if agreement is not None:
    if agreement["n"]:
        st.info(
            f"The prediction agrees with the file's `{LABEL_COLUMN}` on "
            f"**{agreement['share']:.0%}** of the {agreement['n']:,} predicted rows that carry "
            "a label A–G.",
            icon=":material/fact_check:",
        )
    else:
        st.info(
            f"The file has an `{LABEL_COLUMN}` column, but no predicted row carries a label "
            "A–G in it: nothing to compare.",
            icon=":material/fact_check:",
        )
if counts["rejected"]:
    by_code, rejected_rows = workbench.rejection_report(predicted)
    st.markdown("**Why rows were rejected** (a row may have several problems)")
    st.dataframe(
        by_code.rename(
            columns={"code": "Code", "meaning": "Meaning", "rows": "Rows", "example": "Example"}
        ),
        hide_index=True,
        key="batch_reasons",
    )
    with st.expander(f"The {len(rejected_rows):,} rejected rows"):
        st.dataframe(rejected_rows, hide_index=True, key="batch_rejected_rows")
elif counts["warned"]:
    st.success("Every row was predicted; some with a warning (see the results).")
else:
    st.success("Every row is valid and was predicted.", icon=":material/check_circle:")

st.subheader("Results")
# The predictions first, then the file's own columns; rows numbered as in a spreadsheet.
inputs = [column for column in predicted.columns if column not in batch.PREDICTION_COLUMNS]
shown = predicted[[*batch.PREDICTION_COLUMNS, *inputs]].set_axis(predicted.index + 1)
st.dataframe(
    shown,
    placeholder="",
    column_config={
        "_index": st.column_config.NumberColumn("Row", help="The header is row 0"),
        **{
            column: st.column_config.NumberColumn(label(column), format="percent")
            for column in batch.PROBA_COLUMNS
        },
        **{column: label(column) for column in ("predicted_label", *batch.TEXT_COLUMNS)},
    },
    key="batch_results",
)
st.plotly_chart(
    charts.label_bars(workbench.label_counts(predicted), "Distribution of predicted labels"),
    key="batch_chart_labels",
)
st.download_button(
    "Download the results (CSV)",
    data=lambda: batch.to_csv_bytes(predicted),
    file_name=answer["name"].rsplit(".", 1)[0] + "_predicted.csv",
    mime="text/csv",
    key="batch_download",
    icon=":material/download:",
    type="primary",
    on_click="ignore",
)
st.caption(
    f"Predicted by champion v{answer['model_version']}: the input columns, then "
    "`predicted_label`, `proba_A`…`proba_G`, `error` (empty when predicted), `error_code` "
    "(its codes, joined by `|`) and `warning`."
)
