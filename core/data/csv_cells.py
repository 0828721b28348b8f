"""Cells of the CSV files the product writes, made safe to open in a spreadsheet.

A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to
Excel or LibreOffice (CSV injection): OWASP's advice is to prefix it with `'`, which shows
the text as it was. A cell that reads as a number (`-12`, `+3,5`) is left as it is. The
header is cells too: a column name a file came with is written the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS_RE2 = r"^[=+\-@\t\r]"  # FORMULA_STARTS as an RE2 pattern (DuckDB)
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


def safe_cell(value):
    """`value`, prefixed with `'` when it is text a spreadsheet would run as a formula."""
    formula = isinstance(value, str) and value.startswith(FORMULA_STARTS)
    return "'" + value if formula and not _NUMBER.fullmatch(value.strip()) else value


def safe_text_columns(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """`frame` with the given text columns' cells made safe (a shallow copy)."""
    out = frame.copy(deep=False)
    for column in columns:
        if out[column].dtype == object or str(out[column].dtype).startswith("str"):
            out[column] = out[column].map(safe_cell, na_action="ignore")
    return out


def safe_sql(expression: str) -> str:
    """A DuckDB expression giving the text `expression` made safe, cell by cell."""
    return (
        f"CASE WHEN regexp_matches({expression}, '{_STARTS_RE2}') "
        f"AND NOT regexp_full_match(trim({expression}), '{_NUMBER.pattern}') "
        f"THEN '''' || {expression} ELSE {expression} END"
    )
