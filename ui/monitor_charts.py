"""Plotly figures of the Monitor page: drift per feature, a feature's distribution against
the training data, and the volume of predictions logged."""

import pandas as pd
import plotly.graph_objects as go

from ui.chart_style import LAYOUT, count_axis, layout, log_axis
from ui.labels import label as readable

# A drifting feature, a steady one, a high PSI the test does not confirm.
DRIFT_COLOR, STEADY_COLOR, HIGH_PSI_COLOR = "#e2001a", "#1f7a4d", "#8cc084"
REFERENCE_COLOR, CURRENT_COLOR = "#8a969e", "#fbba00"


def psi_bars(
    frame: pd.DataFrame, psi_threshold: float, p_value: float, judged: bool = True
) -> go.Figure:
    """PSI per feature (`frame`: feature, PSI, test, p-value, verdict), coloured by verdict.

    A PSI above the threshold whose test is not significant is its own legend entry, and
    the threshold is a legend entry rather than a label drawn over the bars. When the rows
    are not judged (`judged` False: too little data, not a random sample), a PSI above the
    threshold is "not judged", whatever its p-value: never "not significant" beside p = 1e-80.
    """
    drift = frame["verdict"] == "drift"
    high = (frame["PSI"] > psi_threshold) & ~drift
    not_confirmed = (
        f"PSI > {psi_threshold:g} but not significant (p ≥ {p_value:g})"
        if judged  # then a PSI above the threshold without drift is one the test did not confirm
        else f"PSI > {psi_threshold:g}, not judged (see the note above)"
    )
    kinds = (
        (drift, DRIFT_COLOR, f"drift (PSI > {psi_threshold:g}, p < {p_value:g})"),
        (high, HIGH_PSI_COLOR, not_confirmed),
        (~drift & ~high, STEADY_COLOR, "steady"),
    )
    fig = go.Figure()
    for rows, color, name in kinds:
        part = frame[rows]
        if not part.empty:  # a legend entry only for what the chart shows
            fig.add_trace(
                go.Bar(
                    x=[readable(f) for f in part["feature"]],
                    y=part["PSI"],
                    name=name,
                    marker_color=color,
                    customdata=part[["test", "p-value", "verdict"]],
                    hovertemplate="%{x}<br>PSI %{y:.3f}<br>%{customdata[0]} p = "
                    "%{customdata[1]:.2g}<br>%{customdata[2]}<extra></extra>",
                )
            )
    fig.add_hline(y=psi_threshold, line_dash="dash", line_color="#333")
    line = {"dash": "dash", "color": "#333"}
    name = f"PSI threshold {psi_threshold:g}"
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=line, name=name))
    order = [readable(f) for f in frame["feature"]]
    fig.update_xaxes(title=None, tickangle=-35, categoryorder="array", categoryarray=order)
    most = float(frame["PSI"].max() or 0)
    if most > 10:
        smallest = float(frame["PSI"][frame["PSI"] > 0].min())
        log_axis(fig.update_yaxes, min(smallest, psi_threshold), most, title="PSI")
    else:
        fig.update_yaxes(title="PSI", rangemode="tozero")
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0})
    layout(fig, "PSI per feature", 460)
    fig.update_layout(margin={**LAYOUT["margin"], "t": 90})
    return fig


def distribution_bars(bins: list[dict], title: str) -> go.Figure:
    """The training-data and current shares of each bin (`bins`: bin, reference, current)."""
    frame = pd.DataFrame(bins)
    frame = frame[(frame["reference"] > 0) | (frame["current"] > 0)]
    fig = go.Figure()
    for column, name, color in (
        ("reference", "training data", REFERENCE_COLOR),
        ("current", "current", CURRENT_COLOR),
    ):
        fig.add_trace(go.Bar(x=frame["bin"], y=frame[column], name=name, marker_color=color))
    fig.update_layout(barmode="group")
    fig.update_yaxes(title="share of records", tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title=None, type="category")
    return layout(fig, title, 400)


def volume_bars(counts: pd.DataFrame, period: str) -> go.Figure:
    """Predictions logged per period, stacked by source (`counts`: start, source, count)."""
    fig = go.Figure(
        [
            go.Bar(x=part["start"], y=part["count"], name=source)
            for source, part in counts.groupby("source")
        ]
    )
    fig.update_layout(barmode="stack")
    most = float(counts.groupby("start")["count"].sum().max() or 0)
    count_axis(fig.update_yaxes, most, title="predictions")
    fig.update_xaxes(title=None)
    return layout(fig, f"Predictions per {period} and source", 320)
