"""The familiar coloured A–G DPE scale as HTML: a ladder of bars, longer and redder as the
label worsens, with the predicted class highlighted."""

from html import escape

from core.data.schema import LABELS
from ui.chart_style import LABEL_COLORS

DARK, LIGHT = "#1c2b24", "#ffffff"
PALE_MIX = 0.45  # share of the label's colour in a bar that is not the predicted one

_CSS = """
<style>
.dpe-scale { font-family: "Source Sans Pro", Arial, sans-serif; max-width: 560px; }
.dpe-row { display: flex; align-items: center; margin: 3px 0; }
.dpe-bar { height: 34px; display: flex; align-items: center; justify-content: space-between;
  padding: 0 12px; border-radius: 2px 18px 18px 2px; font-weight: 700; font-size: 20px;
  box-sizing: border-box; }
.dpe-bar.dpe-on { height: 44px; box-shadow: 0 0 0 3px #1c2b24; }
.dpe-bar .dpe-range { font-size: 13px; font-weight: 600; }
.dpe-note { margin-left: 10px; font-size: 14px; white-space: nowrap; }
.dpe-note b { font-size: 16px; }
.dpe-official { margin-left: 8px; font-size: 13px; color: #1c2b24; border: 1px dashed #1c2b24;
  border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
</style>
"""


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def pale(color: str, share: float = PALE_MIX) -> str:
    """`color` mixed with white (a solid colour: text on it keeps its full contrast)."""
    mixed = (round(255 - (255 - c) * share) for c in _rgb(color))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _luminance(color: str) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 255 for c in _rgb(color)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in linear]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(text: str, background: str) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    high, low = sorted((_luminance(text), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_color(background: str) -> str:
    """Dark or white text, whichever reads better on `background`."""
    return max((DARK, LIGHT), key=lambda text: contrast(text, background))


def range_text(bounds: tuple, i: int) -> str:
    """Class i's consumption range from the upper bounds of A..F: "≤ 50", "50 < x ≤ 110",
    "> 750"."""
    if i == 0:
        return f"x ≤ {bounds[0]:g}"
    if i < len(bounds):
        return f"{bounds[i - 1]:g} < x ≤ {bounds[i]:g}"
    return f"x > {bounds[-1]:g}"


def _note(on: bool, probability: float | None, official: bool) -> str:
    note = ""
    if on:
        share = f" · {probability:.0%}" if probability is not None else ""
        note = f"<span class='dpe-note'>◀ <b>predicted</b>{share}</span>"
    elif probability is not None and probability >= 0.005:
        note = f"<span class='dpe-note'>{probability:.0%}</span>"
    if official:
        note += "<span class='dpe-official'>official scale</span>"
    return note


def scale_html(
    predicted: str | None,
    probabilities: dict | None = None,
    official: str | None = None,
    bounds: tuple | None = None,
    unit: str = "kWhEP/m²/an",
) -> str:
    """The A–G ladder; `predicted` highlighted with its probability, `official` (the label
    the official scale gives the consumption) marked, `bounds` (upper bounds of A..F) shown
    as each class's range."""
    rows = []
    for i, label in enumerate(LABELS):
        on = label == predicted
        background = LABEL_COLORS[label] if on else pale(LABEL_COLORS[label])
        ranges = range_text(bounds, i) if bounds else ""
        probability = (probabilities or {}).get(label)
        rows.append(
            f"<div class='dpe-row'><div class='dpe-bar{' dpe-on' if on else ''}' "
            f"style='width:{34 + i * 9}%;background:{background};color:{text_color(background)}'>"
            f"<span>{label}</span><span class='dpe-range'>{escape(ranges)}</span></div>"
            f"{_note(on, probability, official == label)}</div>"
        )
    caption = f"<div style='font-size:12px;color:#333'>x: primary energy use, {escape(unit)}</div>"
    return _CSS + "<div class='dpe-scale'>" + "".join(rows) + (caption if bounds else "") + "</div>"
