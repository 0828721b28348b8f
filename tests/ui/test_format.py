"""ui.format: how the workbench writes scores and plain text inside Streamlit Markdown."""

import pytest
from markdown_it import MarkdownIt

from ui.format import markdown_text, score_delta


@pytest.mark.parametrize(
    "text",
    [
        "expected some of: N°_département_(BAN) (n_departement_ban), Surface_(SHON)",
        "Secteur_activité='*Bureaux*' costs $5 [draft] <b>x</b> ~~y~~ `z` :red[w]",
    ],
)
def test_markdown_text_shows_as_written(text):
    """Issue 23.13: `N°_département_(BAN)` turned italic ("N°*département*(BAN)")."""
    html = MarkdownIt("commonmark").enable("strikethrough").render(markdown_text(text))
    assert "<em>" not in html and "<strong>" not in html and "<code>" not in html
    assert "<s>" not in html and "<a " not in html and "<b>" not in html
    plain = html.removeprefix("<p>").removesuffix("</p>\n")
    unescaped = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
    assert unescaped.replace("&amp;", "&") == text


def test_a_level_score_has_no_direction():
    """Issue 23.16: a +0.000 delta was drawn as a green up arrow."""
    assert score_delta(0.8131, 0.8129) == ("±0.000", True)
    assert score_delta(0.904, 0.825) == ("+0.079", False)
    assert score_delta(0.80, 0.825) == ("-0.025", False)
