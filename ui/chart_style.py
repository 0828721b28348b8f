"""What every workbench chart shares: the DPE label colours, the layout, clean log and
count axes, and the heatmap of counts or shares."""

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ui.explore import NO_LABEL

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
LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}


def label_color(label: str) -> str:
    return LABEL_COLORS.get(label, OTHER_COLOR)


def layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    fig.update_layout(title=title, height=height, **LAYOUT)
    # Small margins, grown to fit tick labels (long or slanted names are never cut).
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def log_ticks(low: float, high: float) -> list[float]:
    """Clean tick values for a log axis over [low, high]: the powers of ten (1, 10, 100…),
    with 2 and 5 between them when the range spans less than two decades."""
    low, high = max(low, 1e-9), max(high, low)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    decades = [10.0**p for p in range(first, last + 1)]
    ticks = [v for v in decades if low <= v <= high]
    if len(ticks) < 3:
        ticks = [v * m for v in decades for m in (1, 2, 5) if low <= v * m <= high]
    return ticks or [low, high]


def _tick_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def log_axis(update, low: float, high: float, **more) -> None:
    """`update` (fig.update_xaxes or update_yaxes) as a log axis with clean labelled ticks."""
    ticks = log_ticks(low, high)
    update(
        type="log",
        tickvals=ticks,
        ticktext=[_tick_text(v) for v in ticks],
        minor={"ticks": "", "showgrid": False},
        **more,
    )


def count_axis(update, most: float, **more) -> None:
    """A count axis: whole numbers only (a step of 1 when counts are small)."""
    small = {"dtick": 1, "tick0": 0} if most < 10 else {}
    update(tickformat=",d", rangemode="tozero", **small, **more)


def heatmap(counts: pd.DataFrame, share: bool, colorscale: str) -> go.Heatmap:
    """Counts as a heatmap; with `share`, each row's shares on a fixed 0–1 scale, the counts
    kept in the cells ("75% (3)")."""
    totals = counts.sum(axis=1).where(lambda s: s > 0, 1)
    shares = counts.div(totals, axis=0)
    if share:
        text = [
            [f"{v:.0%}<br>({n:,})" for v, n in zip(row, count_row, strict=True)]
            for row, count_row in zip(shares.to_numpy(), counts.to_numpy(), strict=True)
        ]
        scale = {"zmin": 0.0, "zmax": 1.0, "colorbar": {"title": "share", "tickformat": ".0%"}}
    else:
        text = [[f"{n:,}" for n in row] for row in counts.to_numpy()]
        scale = {"zmin": 0, "colorbar": {"title": "records", "tickformat": ",d"}}
    return go.Heatmap(
        z=(shares if share else counts).to_numpy(),
        x=[str(column) for column in counts.columns],
        y=[str(row) for row in counts.index],
        colorscale=colorscale,
        text=text,
        texttemplate="%{text}",
        **scale,
    )
