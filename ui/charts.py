"""Plotly figures of the workbench's data and models (Explore, Train, Compare, Predict,
Batch predict): one function per chart, data in, figure out. The Monitor page's are in
`ui.monitor_charts`; what they all share in `ui.chart_style`."""

import math
import textwrap

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.data.schema import LABELS
from ui.chart_style import (
    LABEL_COLORS,
    LAYOUT,
    count_axis,
    heatmap,
    label_color,
    layout,
    log_axis,
)
from ui.explore import NO_LABEL
from ui.labels import FAMILY_LABELS
from ui.labels import label as readable

CONSUMPTION_UNIT = "kWhEP/m²/an"


def label_bars(frame: pd.DataFrame, title: str, value: str = "records") -> go.Figure:
    """Records per label, each bar in its label's colour (`frame`: label, value)."""
    fig = go.Figure(
        go.Bar(
            x=frame["label"],
            y=frame[value],
            marker_color=[label_color(label) for label in frame["label"]],
            marker_line={"color": "#333", "width": 0.5},
            text=frame[value],
            textposition="outside",
        )
    )
    count_axis(fig.update_yaxes, float(frame[value].max() or 0), title=value)
    fig.update_xaxes(type="category", title=None)
    return layout(fig, title)


def consumption_boxes(stats: pd.DataFrame, log_scale: bool, by: str) -> go.Figure:
    """Precomputed boxes (whiskers at p05/p95) of consumption per label, one colour per group."""
    fig = go.Figure()
    palette = px.colors.qualitative.Safe
    for i, (group, part) in enumerate(stats.groupby("group", sort=True)):
        name = FAMILY_LABELS.get(group, group) if by == "family" else group
        fig.add_trace(
            go.Box(
                name=_wrapped(name),
                x=part["label"],
                q1=part["q1"],
                median=part["median"],
                q3=part["q3"],
                lowerfence=part["p05"],
                upperfence=part["p95"],
                marker_color=palette[i % len(palette)],
                hovertext=[f"{n:,} records" for n in part["records"]],
            )
        )
    fig.update_layout(boxmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=list(LABELS), title="DPE label")
    # Precomputed boxes: set the range from the whiskers (plotly's autorange can clip them).
    low, high = float(stats["p05"].min()), float(stats["p95"].max())
    if log_scale:
        low = max(low, 0.1)
        high = max(high, low * 1.1)
        span = [math.log10(low) - 0.1, math.log10(high) + 0.1]
        log_axis(fig.update_yaxes, low, high, title=CONSUMPTION_UNIT, range=span)
    else:
        fig.update_yaxes(title=CONSUMPTION_UNIT, range=[min(0.0, low), high * 1.05])
    grouped = "official scale family" if by == "family" else "sector"
    layout(fig, f"Consumption by label and {grouped} (p05 · q1 · median · q3 · p95)", 430)
    # The legend says what the colours are: the scale the regulation gives the sector.
    fig.update_layout(legend_title_text=f"{grouped.capitalize()}<br>")
    return fig


def _wrapped(name: str, width: int = 32) -> str:
    """A legend entry on lines of about `width` characters (plotly does not wrap)."""
    lines = textwrap.wrap(name, width) or [name]
    return "<br>".join(lines)


def _label_scatter(
    frame: pd.DataFrame, x: str, y: str, names: dict, size: int, opacity: float, **more
) -> go.Figure:
    """Sampled records as points coloured by their DPE label, A–G in order; `names`: the
    readable names of the columns shown."""
    fig = px.scatter(
        frame,
        x=x,
        y=y,
        color="label",
        color_discrete_map=LABEL_COLORS,
        category_orders={"label": [*LABELS, NO_LABEL]},
        labels={"label": "DPE label", **names},
        opacity=opacity,
        render_mode="svg",
        **more,
    )
    fig.update_traces(marker={"size": size})
    return fig


def surface_scatter(frame: pd.DataFrame, log_scale: bool) -> go.Figure:
    """A sample of records (`ui.explore.surface_vs_consumption`): surface, conso, label,
    secteur (shown on hover)."""
    names = {"surface": "floor area (m²)", "conso": CONSUMPTION_UNIT, "secteur": "activity sector"}
    hover = {"secteur": True} if "secteur" in frame else None
    fig = _label_scatter(frame, "surface", "conso", names, 5, 0.6, hover_data=hover)
    if log_scale:
        for update, column in ((fig.update_xaxes, "surface"), (fig.update_yaxes, "conso")):
            values = frame[column][frame[column] > 0]
            if not values.empty:
                log_axis(update, float(values.min()), float(values.max()))
    return layout(fig, f"Floor area vs consumption ({len(frame):,} sampled records)", 430)


def period_heatmap(table: pd.DataFrame, share: bool) -> go.Figure:
    """Labels by construction period: counts, or each period's shares (0–1) with its counts."""
    fig = go.Figure(heatmap(table, share, "YlOrRd"))
    fig.update_traces(hovertemplate="%{y} · %{x}: %{text}<extra></extra>")
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="DPE label", type="category")
    layout(fig, "Label by construction period", 420)
    if share:  # a subtitle: in half the page, one long title line was cut at its end
        fig.update_layout(title_subtitle_text="share of each period; records in brackets")
        fig.update_layout(margin={**LAYOUT["margin"], "t": 60})
    return fig


def departement_bars(frame: pd.DataFrame, top: int = 30) -> go.Figure:
    part = frame.head(top)
    fig = go.Figure(
        go.Bar(
            x=part["departement"],
            y=part["records"],
            marker={
                "color": part["share_fg"].fillna(0),
                "colorscale": [[0, LABEL_COLORS["A"]], [0.5, LABEL_COLORS["D"]], [1, "#e2001a"]],
                "cmin": 0,
                "cmax": max(0.5, float(part["share_fg"].max() or 0)),
                "colorbar": {"title": "share F–G", "tickformat": ".0%"},
            },
            customdata=part[["labelled", "share_fg"]].to_numpy(),
            hovertemplate=(
                "département %{x}<br>%{y:,} records · %{customdata[0]:,} labelled<br>"
                "F–G: %{customdata[1]:.0%} of the labelled<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(type="category", title="département")
    count_axis(fig.update_yaxes, float(part["records"].max() or 0), title="records")
    return layout(fig, f"Records by département (top {len(part)}), coloured by share of F–G")


def lambert_map(frame: pd.DataFrame) -> go.Figure:
    hover = {"departement": True, "x_km": False, "y_km": False}
    names = {"departement": "département"}
    fig = _label_scatter(frame, "x_km", "y_km", names, 4, 0.7, hover_data=hover)
    fig.update_yaxes(scaleanchor="x", scaleratio=1, title="Lambert-93 Y (km)")
    fig.update_xaxes(title="Lambert-93 X (km)")
    return layout(fig, f"Where the buildings are ({len(frame):,} sampled, Lambert-93)", 560)


def null_bars(frame: pd.DataFrame) -> go.Figure:
    """Share missing per column (`frame`: column, share_missing), columns by readable name."""
    fig = go.Figure(
        go.Bar(
            y=[readable(column) for column in frame["column"]],
            x=frame["share_missing"],
            customdata=frame["column"],
            orientation="h",
            marker_color="#5b7f95",
            hovertemplate="%{y} (%{customdata}): %{x:.1%} missing<extra></extra>",
        )
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1], title="share missing")
    fig.update_yaxes(autorange="reversed", title=None, tickfont={"size": 10})
    return layout(fig, "Missing values per column", max(400, 16 * len(frame)))


def importance_bars(frame: pd.DataFrame, top: int = 20) -> go.Figure:
    """The fields whose shuffling changes the score, largest loss first (`frame`: feature,
    importance, sorted); a field the model does not read (exactly 0) gets no bar."""
    part = frame[frame["importance"] != 0].head(top)
    fig = go.Figure(
        go.Bar(
            y=[readable(name) for name in part["feature"]],
            x=part["importance"],
            orientation="h",
            marker_color="#1f7a4d",
        )
    )
    fig.update_yaxes(autorange="reversed", title=None, tickfont={"size": 10})
    fig.update_xaxes(title="macro-F1 lost when the field is shuffled")
    return layout(fig, f"Field importance (top {len(part)})", max(360, 22 * len(part)))


def per_class_table(per_class: dict) -> pd.DataFrame:
    """{label: {precision, recall, f1, support}} as a table, labels as rows."""
    table = pd.DataFrame(per_class).T.reindex([x for x in LABELS if x in per_class])
    table = table.rename_axis("label").reset_index()
    table["support"] = table["support"].astype(int)
    return table.round({"precision": 3, "recall": 3, "f1": 3})


def metric_bars(frame: pd.DataFrame, metrics: list[str]) -> go.Figure:
    """Runs side by side: `frame` has a `run` column and one column per metric."""
    long = frame.melt(id_vars="run", value_vars=metrics, var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(readable)
    fig = px.bar(long, x="metric", y="value", color="run", barmode="group", text_auto=".3f")
    fig.update_yaxes(title=None)
    fig.update_xaxes(title=None)
    return layout(fig, "Test metrics (log loss: lower is better)")


def per_class_bars(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Per-class metric: `frame` has run, label, value."""
    fig = px.bar(frame, x="label", y="value", color="run", barmode="group")
    fig.update_xaxes(
        categoryorder="array", categoryarray=list(LABELS), type="category", title="DPE label"
    )
    fig.update_yaxes(range=[0, 1.05], title=readable(metric))
    return layout(fig, f"{readable(metric)} per label")


def confusion_matrix(labels: list[str], counts, normalised: bool = False) -> go.Figure:
    """True label (rows) against predicted label (columns). `counts[i][j]`: records of true
    label `labels[i]` predicted `labels[j]`. Normalised: each row's shares (its recall on the
    diagonal), on a fixed 0–1 scale; the counts stay in the cells."""
    table = pd.DataFrame(counts, index=list(labels), columns=list(labels)).fillna(0).astype(int)
    fig = go.Figure(heatmap(table, normalised, "Blues"))
    fig.update_traces(hovertemplate="true %{y} · predicted %{x}: %{text}<extra></extra>")
    fig.update_xaxes(type="category", title="predicted label")
    fig.update_yaxes(type="category", title="true label", autorange="reversed")
    title = "Confusion matrix (test split" + (", share of each true label)" if normalised else ")")
    return layout(fig, title, 460)


def probability_bars(probabilities: dict) -> go.Figure:
    labels = list(LABELS)
    values = [probabilities.get(label, 0.0) or 0.0 for label in labels]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            marker_color=[label_color(label) for label in labels],
            marker_line={"color": "#333", "width": 0.5},
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
        )
    )
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", title="probability")
    fig.update_xaxes(type="category", title=None)
    return layout(fig, "Probabilities", 320)
