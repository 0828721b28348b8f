"""Predict: one building's label with the champion, shown on the familiar A–G DPE scale."""

import streamlit as st

from core.data.feature_sets import CONSUMPTION_FIELDS
from ui import charts, frame, workbench
from ui.charts import CONSUMPTION_UNIT
from ui.format import markdown_text, short
from ui.labels import FAMILY_LABELS, label
from ui.scale import scale_html
from ui.serving import load_champion

NOT_GIVEN = "— not given —"

context = frame.context()
settings, manifest = context.settings, context.needed_champion()
champion, problem = load_champion(settings, manifest)
if champion is None:
    st.warning(problem, icon=":material/warning:")
    st.stop()

st.caption(
    "Fill in what you know: every field is optional, a missing one is the model's to handle. "
    f"The champion (v{champion.model_version}, {manifest.get('model_family', 'model')}, "
    f"`{manifest.get('feature_set', '?')}`) decides which fields it uses."
)

fields = workbench.form_fields(manifest.get("input_schema", []))
building = [f for f in fields if f["name"] not in CONSUMPTION_FIELDS]
consumption = [f for f in fields if f["name"] in CONSUMPTION_FIELDS]


def field_widget(field: dict, container):
    key = f"predict_{field['name']}"
    help_text = f"ADEME column `{field['official']}`"
    if field["kind"] == "category":
        if field["choices"]:
            # A value the champion never saw may be typed: it is predicted, with a notice.
            return container.selectbox(
                label(field["name"]),
                [None, *field["choices"]],
                format_func=lambda v: NOT_GIVEN if v is None else v,
                accept_new_options=True,
                key=key,
                help=help_text + " · type a value that is not in the list if yours is missing",
            )
        value = container.text_input(label(field["name"]), key=key, help=help_text)
        return value.strip() or None
    low, high = field["min"], field["max"]
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if field['min_exclusive'] else '≥'} {low:g}")
    if high is not None:
        bounds.append(f"≤ {high:g}")
    help_text += f" · valid: {' and '.join(bounds)}" if bounds else ""
    # No min/max on the widget: a value out of bounds would leave the form unsubmitted
    # without a word. The champion checks it and names the field and the bound.
    return container.number_input(
        label(field["name"]),
        value=None,
        step=1 if field["kind"] == "integer" else None,
        placeholder=NOT_GIVEN,
        key=key,
        help=help_text,
    )


with st.form("predict_form", border=True):
    st.markdown("**The building**")
    columns = st.columns(3)
    record = {}
    for i, field in enumerate(building):
        record[field["name"]] = field_widget(field, columns[i % 3])
    if consumption:
        st.markdown("**Its measured consumption** (the label is a threshold of it, by regulation)")
        columns = st.columns(3)
        for i, field in enumerate(consumption):
            record[field["name"]] = field_widget(field, columns[i % 3])
        scale_conso = record.get("conso_kwhep_m2_an")
    else:
        st.markdown(
            "**Its measured consumption, if known**: for the official scale only, the champion "
            "does not use it"
        )
        scale_conso = st.columns(3)[0].number_input(
            label("conso_kwhep_m2_an"),
            value=None,
            placeholder=NOT_GIVEN,
            key="predict_scale_conso",
            help="ADEME column `Conso_kWhep/m²/an` · the label the official scale gives it is "
            "shown next to the prediction",
        )
    submitted = st.form_submit_button("Predict the label", type="primary", icon=":material/sell:")

if submitted:
    given = {name: value for name, value in record.items() if value is not None}
    result = champion.predict([given], source="app")[0]
    st.session_state["predict_result"] = {
        "record": given,
        "scale_conso": scale_conso,
        "result": result,
        "model_version": champion.model_version,
    }

answer = st.session_state.get("predict_result")
if answer is None:
    st.stop()
result = answer["result"]
problem = result["error"] or workbench.out_of_bounds("conso_kwhep_m2_an", answer["scale_conso"])
if problem:
    st.warning(
        f"The champion cannot take this record: {markdown_text(problem)}",
        icon=":material/warning:",
    )
    st.stop()
if result.get("warnings"):
    notes = "\n".join(f"- {markdown_text(warning)}" for warning in result["warnings"])
    st.warning(
        f"Predicted, but the champion set something aside:\n{notes}",
        icon=":material/info:",
    )

record = answer["record"]
official = workbench.official_answer(record.get("secteur_activite"), answer["scale_conso"])
left, right = st.columns([3, 2])
with left:
    st.subheader(f"Predicted label: {result['label']}")
    st.html(
        scale_html(
            result["label"],
            result["probabilities"],
            official=official["label"] if official else None,
            bounds=official["bounds"] if official else None,
        )
    )
with right:
    st.plotly_chart(charts.probability_bars(result["probabilities"]), key="predict_chart_proba")

if official:
    text = (
        f"On the official scale for **{FAMILY_LABELS[official['family']]}** "
        f"({official['source']}), {answer['scale_conso']:g} {CONSUMPTION_UNIT} is label "
        f"**{official['label']}**"
    )
    if official["better_label"]:
        text += (
            f": {official['distance']:g} {CONSUMPTION_UNIT} above the upper bound of "
            f"{official['better_label']} ({official['better_bound']:g})."
        )
    else:
        text += ", the best class."
    if official["label"] != result["label"]:
        text += " The model and the scale disagree here."
    st.info(text, icon=":material/straighten:")
else:
    st.caption(
        f"Enter the primary energy use ({CONSUMPTION_UNIT}) to see the label the official scale "
        "gives it and how far it is from the next better class."
    )
st.caption(
    f"Answered by champion {manifest.get('registered_model', 'dpe')} "
    f"v{answer['model_version']} · run `{short(manifest.get('run_id'), 8)}` · "
    f"trained on dataset `{short(manifest.get('dataset_version'))}`."
)
