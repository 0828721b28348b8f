"""ui/charts.py, ui/monitor_charts.py, ui/chart_style.py, ui/scale.py and ui/labels.py:
what the figures show a user (issue 15.8)."""

import pandas as pd
import pytest

from core.data.schema import COLUMNS, LABELS
from core.modeling.evaluate import confusion_data
from ui import chart_style, charts, labels, monitor_charts, scale
from ui.labels import FAMILY_LABELS

BOUNDS = (50, 110, 210, 350, 540, 750)


def test_log_ticks_are_powers_of_ten_without_minor_labels():
    assert chart_style.log_ticks(0.5, 40_000) == [1, 10, 100, 1_000, 10_000]
    # Less than two decades: 1-2-5 steps, still round numbers.
    assert chart_style.log_ticks(30, 900) == [50, 100, 200, 500]


def test_consumption_boxes_on_a_log_axis_label_only_clean_ticks():
    stats = pd.DataFrame(
        {
            "group": ["bureau_administration_enseignement"] * 2,
            "label": ["A", "G"],
            "q1": [20.0, 800.0],
            "median": [30.0, 1_200.0],
            "q3": [40.0, 2_000.0],
            "p05": [2.0, 600.0],
            "p95": [45.0, 9_000.0],
            "records": [10, 12],
        }
    )
    axis = charts.consumption_boxes(stats, log_scale=True, by="family").layout.yaxis
    assert axis.type == "log"
    assert list(axis.ticktext) == ["10", "100", "1,000"]
    assert all(text in {"1", "10", "100", "1,000", "10,000"} for text in axis.ticktext)
    assert charts.consumption_boxes(stats, True, "family").data[0].name.startswith("offices")


def test_surface_scatter_log_axes_have_clean_ticks():
    frame = pd.DataFrame(
        {"surface": [12.0, 150.0, 80_000.0], "conso": [3.0, 250.0, 4_000.0], "label": list("ACG")}
    )
    fig = charts.surface_scatter(frame, log_scale=True)
    assert list(fig.layout.xaxis.ticktext) == ["100", "1,000", "10,000"]
    assert list(fig.layout.yaxis.ticktext) == ["10", "100", "1,000"]


def test_surface_scatter_names_the_sector_of_a_point_on_hover():
    # The columns `ui.explore.surface_vs_consumption` returns.
    frame = pd.DataFrame(
        {"surface": [12.0, 150.0], "conso": [3.0, 250.0], "label": ["A", "C"]}
    ).assign(secteur=["W : Administrations, banques, bureaux", "M : Magasins de vente"])
    fig = charts.surface_scatter(frame, log_scale=False)
    assert "activity sector=%{customdata[0]}" in fig.data[0].hovertemplate
    assert list(fig.data[0].customdata[0]) == ["W : Administrations, banques, bureaux"]


def test_period_heatmap_shares_run_from_0_to_1_and_show_counts():
    table = pd.DataFrame({"A": [3, 0], "D": [1, 8]}, index=["avant 1948", "1948-1974"])
    heat = charts.period_heatmap(table, share=True).data[0]
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    assert heat.text[0][0] == "75%<br>(3)" and heat.text[1][1] == "100%<br>(8)"
    counts = charts.period_heatmap(table, share=False).data[0]
    assert counts.text[1][1] == "8" and counts.zmin == 0


def test_count_axes_have_whole_number_ticks():
    few = pd.DataFrame({"label": list("ABC"), "records": [1, 3, 2]})
    axis = charts.label_bars(few, "labels").layout.yaxis
    assert axis.tickformat == ",d" and axis.dtick == 1
    many = pd.DataFrame({"label": list("AB"), "records": [120, 3_000]})
    assert charts.label_bars(many, "labels").layout.yaxis.tickformat == ",d"
    volume = pd.DataFrame(
        {"start": ["2026-12-01", "2026-12-01", "2026-12-02"], "source": ["api", "app", "api"]}
    ).assign(count=[2, 1, 4])
    axis = monitor_charts.volume_bars(volume, "day").layout.yaxis
    assert axis.tickformat == ",d" and axis.dtick == 1


def test_confusion_matrix_counts_and_normalised_view():
    data = confusion_data(list("AABBBC"), list("ABBBCC"), classes=list("ABC"))
    assert data == {"labels": ["A", "B", "C"], "counts": [[1, 1, 0], [0, 2, 1], [0, 0, 1]]}
    counts = charts.confusion_matrix(data["labels"], data["counts"]).data[0]
    assert counts.type == "heatmap" and counts.text[1][1] == "2"
    shares = charts.confusion_matrix(data["labels"], data["counts"], normalised=True).data[0]
    assert (shares.zmin, shares.zmax) == (0.0, 1.0)
    assert shares.z[1][1] == pytest.approx(2 / 3)
    assert shares.text[0][0] == "50%<br>(1)"


def test_psi_bars_explain_high_but_not_significant_and_keep_the_threshold_off_the_bars():
    frame = pd.DataFrame(
        {
            "feature": ["surface_utile", "secteur_activite", "version_dpe"],
            "PSI": [0.9, 0.4, 0.01],
            "test": ["ks", "chi2", "ks"],
            "p-value": [1e-9, 0.3, 0.8],
            "verdict": ["drift", "no drift", "no drift"],
        }
    )
    fig = monitor_charts.psi_bars(frame, psi_threshold=0.2, p_value=0.01)
    names = {trace.name: list(trace.x) for trace in fig.data if trace.type == "bar"}
    assert names["drift (PSI > 0.2, p < 0.01)"] == ["Usable floor area (m²)"]
    assert names["PSI > 0.2 but not significant (p ≥ 0.01)"] == ["Activity sector"]
    assert names["steady"] == ["DPE version"]
    # The threshold is a legend entry, not a text annotation drawn over the bars.
    assert not fig.layout.annotations
    assert any(trace.name == "PSI threshold 0.2" for trace in fig.data)


def test_every_column_has_a_readable_english_label():
    for official, snake, _ in COLUMNS:
        readable = labels.label(snake)
        assert readable == labels.label(official)
        assert "_" not in readable and readable[0].isupper(), (snake, readable)
    assert labels.label("Nom__commune_(BAN)") == "Municipality"
    assert labels.label("macro_f1") == "Macro-F1"


def test_scale_ranges_name_the_variable_and_text_is_readable_on_every_bar():
    assert [scale.range_text(BOUNDS, i) for i in (0, 1, 6)] == [
        "x ≤ 50",
        "50 < x ≤ 110",
        "x > 750",
    ]
    html = scale.scale_html("C", {"C": 0.7, "D": 0.3}, official="D", bounds=BOUNDS)
    assert "50 &lt; x ≤ 110" in html and "&lt; ≤" not in html and "opacity" not in html
    for label in LABELS:
        for background in (
            chart_style.LABEL_COLORS[label],
            scale.pale(chart_style.LABEL_COLORS[label]),
        ):
            # Large bold text: WCAG asks for 3:1; pale bars get more.
            assert scale.contrast(scale.text_color(background), background) >= 4


def test_psi_bars_of_rows_not_judged_never_call_a_tiny_p_value_not_significant():
    """Issue 23.4: "PSI > 0.2 but not significant (p ≥ 0.01)" was drawn beside p = 6e-86 for
    traffic that is not a random sample (no feature is judged there)."""
    frame = pd.DataFrame(
        {
            "feature": ["surface_utile", "version_dpe"],
            "PSI": [3.2, 0.01],
            "test": ["ks", "ks"],
            "p-value": [6e-86, 0.8],
            "verdict": ["not a random sample", "not a random sample"],
        }
    )
    fig = monitor_charts.psi_bars(frame, psi_threshold=0.2, p_value=0.01, judged=False)
    names = {trace.name: list(trace.x) for trace in fig.data if trace.type == "bar"}
    assert not [name for name in names if "not significant" in name]
    assert names["PSI > 0.2, not judged (see the note above)"] == ["Usable floor area (m²)"]


def test_importance_bars_leave_out_the_fields_a_model_does_not_read():
    """Issue 23.16: the sector-scale chart was padded with zero bars."""
    frame = pd.DataFrame(
        {
            "feature": ["conso_kwhep_m2_an", "secteur_activite", "surface_utile", "version_dpe"],
            "importance": [0.41, 0.12, 0.0, 0.0],
        }
    )
    fig = charts.importance_bars(frame)
    assert list(fig.data[0].y) == ["Primary energy use (kWhEP/m²/an)", "Activity sector"]
    assert fig.layout.title.text == "Field importance (top 2)"


def test_consumption_boxes_say_what_their_colours_are():
    """Issue 23.14: the boxes by official scale had no legend title, names cut short."""
    stats = pd.DataFrame(
        {
            "label": ["A", "A"],
            "group": ["autres_batiments", "occupation_continue"],
            "records": [4, 5],
            **{name: [10.0, 20.0] for name in ("p05", "q1", "median", "q3", "p95")},
        }
    )
    fig = charts.consumption_boxes(stats, log_scale=True, by="family")
    assert fig.layout.legend.title.text.startswith("Official scale family")
    assert "official scale family" in fig.layout.title.text
    names = [trace.name.replace("<br>", " ") for trace in fig.data]
    assert names == [FAMILY_LABELS["autres_batiments"], FAMILY_LABELS["occupation_continue"]]
    by_sector = charts.consumption_boxes(stats.assign(group=["W : x", "J : y"]), True, "sector")
    assert by_sector.layout.legend.title.text.startswith("Sector")


def test_period_heatmap_title_fits_half_the_page():
    """Issue 23.14: the one-line title was cut ("records in bra") in its half-page column."""
    table = pd.DataFrame({"A": [3, 0], "D": [1, 8]}, index=["avant 1948", "1948-1974"])
    fig = charts.period_heatmap(table, share=True)
    assert len(fig.layout.title.text) <= 40
    assert fig.layout.title.subtitle.text == "share of each period; records in brackets"
