"""Plotly figures of the workbench: one function per chart, data in, figure out."""

import math

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.explore import NO_LABEL
from core.scales import FAMILIES
from core.schema import LABELS

# The colours of the familiar A–G DPE scale.
LABEL_COLORS = {
    "A": "#009036",
    "B": "#55ab26",
    "C": "#c8d200",
    "D": "#ffed00",
    "E": "#fbba00",
    "F": "#eb6909",
    "G": "#e2001a",
    NO_LABEL: "#b8bec4",
}
OTHER_COLOR = "#6c757d"
FAMILY_NAMES = {family: text.split(" (")[0] for family, (text, _, _) in FAMILIES.items()}
FAMILY_NAMES["centre_commercial"] = "centres commerciaux"
LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def label_color(label: str) -> str:
    return LABEL_COLORS.get(label, OTHER_COLOR)


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, **LAYOUT)
    return fig


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
    fig.update_yaxes(title=value)
    fig.update_xaxes(type="category", title=None)
    return _layout(fig, title)


def consumption_boxes(stats: pd.DataFrame, log_scale: bool, by: str) -> go.Figure:
    """Precomputed boxes (whiskers at p05/p95) of consumption per label, one colour per group."""
    fig = go.Figure()
    palette = px.colors.qualitative.Safe
    for i, (group, part) in enumerate(stats.groupby("group", sort=True)):
        name = FAMILY_NAMES.get(group, group) if by == "family" else group
        fig.add_trace(
            go.Box(
                name=name if len(name) < 45 else name[:42] + "…",
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
    fig.update_xaxes(categoryorder="array", categoryarray=list(LABELS), title="label")
    # Precomputed boxes: set the range from the whiskers (plotly's autorange can clip them).
    low, high = float(stats["p05"].min()), float(stats["p95"].max())
    if log_scale:
        low = max(low, 0.1)
        span = [math.log10(low) - 0.1, math.log10(max(high, low * 1.1)) + 0.1]
    else:
        span = [min(0.0, low), high * 1.05]
    fig.update_yaxes(type="log" if log_scale else "linear", title="kWhEP/m²/an", range=span)
    return _layout(fig, "Consumption by label and sector (p05 · q1 · median · q3 · p95)", 430)


def surface_scatter(frame: pd.DataFrame, log_scale: bool) -> go.Figure:
    fig = px.scatter(
        frame,
        x="surface",
        y="conso",
        color="label",
        color_discrete_map=LABEL_COLORS,
        category_orders={"label": list(LABELS)},
        hover_data={"secteur_activite": True} if "secteur_activite" in frame else None,
        opacity=0.6,
        render_mode="svg",
        log_x=log_scale,
        log_y=log_scale,
        labels={"surface": "surface (m²)", "conso": "kWhEP/m²/an"},
    )
    fig.update_traces(marker={"size": 5})
    return _layout(fig, f"Surface vs consumption ({len(frame):,} sampled records)", 430)


def period_heatmap(table: pd.DataFrame, share: bool) -> go.Figure:
    values = table.div(table.sum(axis=1).where(lambda s: s > 0, 1), axis=0) if share else table
    fig = go.Figure(
        go.Heatmap(
            z=values.to_numpy(),
            x=list(values.columns),
            y=list(values.index),
            colorscale="YlOrRd",
            text=[[f"{v:.0%}" if share else f"{v:,}" for v in row] for row in values.to_numpy()],
            texttemplate="%{text}",
            hovertemplate="%{y} · %{x}: %{text}<extra></extra>",
            colorbar={"title": "share" if share else "records"},
        )
    )
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="label", type="category")
    title = "Label by construction period" + (" (share of each period)" if share else "")
    return _layout(fig, title, 420)


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
    fig.update_yaxes(title="records")
    return _layout(fig, f"Records by département (top {len(part)}), coloured by share of F–G")


def lambert_map(frame: pd.DataFrame) -> go.Figure:
    fig = px.scatter(
        frame,
        x="x_km",
        y="y_km",
        color="label",
        color_discrete_map=LABEL_COLORS,
        category_orders={"label": [*LABELS, NO_LABEL]},
        hover_data={"departement": True, "x_km": False, "y_km": False},
        opacity=0.7,
        render_mode="svg",
    )
    fig.update_traces(marker={"size": 4})
    fig.update_yaxes(scaleanchor="x", scaleratio=1, title="Lambert-93 Y (km)")
    fig.update_xaxes(title="Lambert-93 X (km)")
    return _layout(fig, f"Where the buildings are ({len(frame):,} sampled, Lambert-93)", 560)


def null_bars(frame: pd.DataFrame) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            y=frame["column"],
            x=frame["share_missing"],
            orientation="h",
            marker_color="#5b7f95",
            hovertemplate="%{y}: %{x:.1%} missing<extra></extra>",
        )
    )
    fig.update_xaxes(tickformat=".0%", range=[0, 1], title="share missing")
    fig.update_yaxes(autorange="reversed", title=None, tickfont={"size": 10})
    return _layout(fig, "Missing values per column", max(400, 16 * len(frame)))


def importance_bars(frame: pd.DataFrame, top: int = 20) -> go.Figure:
    part = frame.head(top)
    fig = go.Figure(
        go.Bar(y=part["feature"], x=part["importance"], orientation="h", marker_color="#1f7a4d")
    )
    fig.update_yaxes(autorange="reversed", title=None, tickfont={"size": 10})
    fig.update_xaxes(title="importance")
    return _layout(fig, f"Feature importance (top {len(part)})", max(360, 22 * len(part)))


def per_class_table(per_class: dict) -> pd.DataFrame:
    """{label: {precision, recall, f1, support}} as a table, labels as rows."""
    table = pd.DataFrame(per_class).T.reindex([x for x in LABELS if x in per_class])
    table = table.rename_axis("label").reset_index()
    table["support"] = table["support"].astype(int)
    return table.round({"precision": 3, "recall": 3, "f1": 3})


def metric_bars(frame: pd.DataFrame, metrics: list[str]) -> go.Figure:
    """Runs side by side: `frame` has a `run` column and one column per metric."""
    long = frame.melt(id_vars="run", value_vars=metrics, var_name="metric", value_name="value")
    fig = px.bar(long, x="metric", y="value", color="run", barmode="group", text_auto=".3f")
    fig.update_yaxes(title=None)
    return _layout(fig, "Test metrics (log loss: lower is better)")


def per_class_bars(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Per-class metric: `frame` has run, label, value."""
    fig = px.bar(frame, x="label", y="value", color="run", barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=list(LABELS), type="category")
    fig.update_yaxes(range=[0, 1.05], title=metric)
    return _layout(fig, f"Per-class {metric}")


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
    return _layout(fig, "Probabilities", 320)
