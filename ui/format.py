"""How the workbench writes things: short ids, status markers, feature-set notes, plain text
inside Markdown."""

import re

from core.data.feature_sets import FEATURE_SETS

# What Streamlit's Markdown would read as formatting in a plain sentence: emphasis, code,
# links, HTML, LaTeX ($), strike-through, tables, headings, and the colon of its directives.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#|~$:])")


def short(text: str | None, n: int = 12) -> str:
    """The first `n` characters of an id (dataset version, run id), or a dash."""
    return "—" if not text else str(text)[:n]


def marker(ok: bool) -> str:
    """A green tick or an orange warning sign, in Streamlit markdown."""
    return ":green[:material/check_circle:]" if ok else ":orange[:material/error:]"


def when(iso_time: str | None) -> str:
    """An ISO time as `YYYY-MM-DD HH:MM` (the workbench shows UTC)."""
    return str(iso_time or "")[:16].replace("T", " ")


def leakage_note(feature_set: str) -> str | None:
    if FEATURE_SETS[feature_set].leaks_label:
        return (
            "`with-consumption` includes the primary consumption, and by regulation the label "
            "is a threshold of it on the building's official scale: its scores measure how well "
            "a model rediscovers the scales, not how well it predicts a building's label "
            "before a diagnostic (use `building-only` for that)."
        )
    return None


def feature_set_help() -> str:
    return " · ".join(f"`{name}`: {len(fs.fields)} fields" for name, fs in FEATURE_SETS.items())


MODEL_LABELS = {
    "rules": "Rule baseline (the official scales)",
    "sector-scale": "Official scales, each sector's learned",
    "logreg": "Logistic regression",
    "rf": "Random forest",
    "hgb": "Histogram gradient boosting",
    "scale": "Learned scale + official thresholds",
}
SEARCH_LABELS = {
    "none": "None: default hyper-parameters",
    "grid": "Grid search",
    "random": "Random search",
}
BASELINE_LABELS = {"rules": "rule baseline", "majority": "majority baseline"}


def model_label(family: str | None) -> str:
    """A model family as the pages name it (a family added later shows its own name)."""
    return MODEL_LABELS.get(family or "", family or "—")


def markdown_text(text: str) -> str:
    """`text` (a message from core, a file or column name) shown as written inside Streamlit
    Markdown: `N°_département_(BAN)` keeps its underscores instead of turning italic."""
    return _MARKDOWN.sub(r"\\\1", text)


def score_delta(value: float, reference: float) -> tuple[str, bool]:
    """A score's difference to its reference as shown (3 decimals), and whether it is level:
    a difference that rounds to nothing reads "±0.000", never "+0.000" with a green arrow."""
    level = round(value - reference, 3) == 0
    return ("±0.000" if level else f"{value - reference:+.3f}"), level
