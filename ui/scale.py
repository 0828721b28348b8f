"""The familiar coloured A–G DPE scale as HTML: a ladder of bars, longer and redder as the
label worsens, with the predicted class highlighted."""

from html import escape

from core.schema import LABELS
from ui.charts import LABEL_COLORS

DARK_TEXT = {"C", "D", "E"}  # labels whose light colours need dark text

_CSS = """
<style>
.dpe-scale { font-family: "Source Sans Pro", Arial, sans-serif; max-width: 560px; }
.dpe-row { display: flex; align-items: center; margin: 3px 0; }
.dpe-bar { height: 34px; display: flex; align-items: center; justify-content: space-between;
  padding: 0 12px; border-radius: 2px 18px 18px 2px; font-weight: 700; font-size: 20px;
  box-sizing: border-box; opacity: 0.45; }
.dpe-bar.dpe-on { opacity: 1; height: 44px; box-shadow: 0 0 0 3px #1c2b24; }
.dpe-bar .dpe-range { font-size: 12px; font-weight: 400; }
.dpe-note { margin-left: 10px; font-size: 14px; white-space: nowrap; }
.dpe-note b { font-size: 16px; }
.dpe-official { margin-left: 8px; font-size: 13px; color: #1c2b24; border: 1px dashed #1c2b24;
  border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
</style>
"""


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
        width = 34 + i * 9
        on = label == predicted
        text_color = "#1c2b24" if label in DARK_TEXT else "#ffffff"
        if bounds:
            low = "" if i == 0 else f"{bounds[i - 1]:g} <"
            high = f"≤ {bounds[i]:g}" if i < len(bounds) else ""
            range_text = f"{low} {high}".strip()
        else:
            range_text = ""
        probability = (probabilities or {}).get(label)
        note = ""
        if on:
            share = f" · {probability:.0%}" if probability is not None else ""
            note = f"<span class='dpe-note'>◀ <b>predicted</b>{share}</span>"
        elif probability is not None and probability >= 0.005:
            note = f"<span class='dpe-note'>{probability:.0%}</span>"
        if official == label:
            note += "<span class='dpe-official'>official scale</span>"
        rows.append(
            f"<div class='dpe-row'><div class='dpe-bar{' dpe-on' if on else ''}' "
            f"style='width:{width}%;background:{LABEL_COLORS[label]};color:{text_color}'>"
            f"<span>{label}</span><span class='dpe-range'>{escape(range_text)}</span></div>"
            f"{note}</div>"
        )
    caption = f"<div style='font-size:12px;color:#555'>ranges in {escape(unit)}</div>"
    return _CSS + "<div class='dpe-scale'>" + "".join(rows) + (caption if bounds else "") + "</div>"
