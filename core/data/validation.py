"""Record validation, written once: the rules come from `core.data.schema.RECORD_FIELDS`.

Each rule of a number field (field, predicate, message) compiles two ways:
- to numpy, for records (`Champion.predict`): `spec_checks(name)` and `add_number_errors`;
- to SQL, for bulk cleaning (`clean_sql`, run by DuckDB over a whole source at ingest and
  over a DataFrame by `clean()`).
Both show values with the same formatter and read text the same way (trimmed, blank or NaN
is missing, decimal comma or point), so a value gets the same message either way.

This module imports numpy only: the API loads it at start; DuckDB and pandas are imported
by `clean()` when it runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.data.schema import (
    COLUMNS,
    CONSO_PLACEHOLDER,
    LABEL_COLUMN,
    LABELS,
    OFFICIAL_TO_SNAKE,
    RECORD_FIELDS,
    SURFACE_PLACEHOLDER,
    source_columns,
)

if TYPE_CHECKING:
    import pandas as pd

Check = tuple[Callable[[np.ndarray], np.ndarray], str]  # (where values fail, the rule broken)
BLANKS = " \t\r\n\f\v"  # what is trimmed off text, in records and in bulk alike


# --- Reading values ---------------------------------------------------------------------------


def number_text(value: float) -> str:
    """A number as messages show it: 100 rather than 100.0 (the SQL twin: `_number_text_sql`)."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _number_text_sql(expr: str) -> str:
    return (
        f"CASE WHEN {expr} = trunc({expr}) AND abs({expr}) < 1e15 "
        f"THEN CAST(CAST({expr} AS BIGINT) AS VARCHAR) ELSE CAST({expr} AS VARCHAR) END"
    )


def trimmed(value):
    """Text without surrounding blanks, None when nothing is left; other values as given."""
    if isinstance(value, str):
        return value.strip(BLANKS) or None
    return value


def _trimmed_sql(expr: str) -> str:
    # trim() with characters is ~5x slower than a test of the first and last characters:
    # trim only the rare values that start or end with a blank (or a control character).
    text = f"CAST({expr} AS VARCHAR)"
    return (
        f"NULLIF(CASE WHEN ascii({text}) <= 32 OR ascii({text}[-1]) <= 32 "
        f"THEN trim({text}, {_literal(BLANKS)}) ELSE {text} END, '')"
    )


def to_number(value) -> float | None:
    """A JSON number or number text (decimal point or comma) as a float; None if neither.
    Reads text as DuckDB's TRY_CAST does in `clean_sql` (which also takes `1_000`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.isascii():
        try:
            return float(value.replace(",", "."))
        except ValueError:
            return None
    return None


def _to_number_sql(expr: str) -> str:
    return f"TRY_CAST(replace({expr}, ',', '.') AS DOUBLE)"


def parse_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Floats (NaN when missing, NaN or not a number) and where a value is not a number."""
    if all(value is None or type(value) in (float, int) for value in values):
        return values.astype(float), np.zeros(len(values), dtype=bool)  # None -> NaN
    numbers = [None if value is None else to_number(value) for value in values]
    bad = np.array([v is not None and n is None for v, n in zip(values, numbers, strict=True)])
    return np.array([np.nan if n is None else n for n in numbers], dtype=float), bad


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# --- Rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One check of a number field: values where `op(value, bound)` holds break it."""

    op: str  # "<", "<=", ">" or "not integer"
    bound: float | None  # None for "not integer"
    text: str  # what the value must be, e.g. "must be > 0"

    def fails(self, values: np.ndarray) -> np.ndarray:
        bound = self.bound
        if bound is None:  # "not integer"
            return values != np.trunc(values)
        return _OPERATORS[self.op](values, bound)

    def fails_sql(self, expr: str) -> str:
        if self.bound is None:  # "not integer"
            return f"{expr} <> trunc({expr})"
        return f"{expr} {self.op} {self.bound!r}"


_OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt}


def _bounds(low: float | None, high: float | None, low_exclusive: bool = False) -> list[Rule]:
    rules = []
    if low is not None:
        if low_exclusive:
            rules.append(Rule("<=", low, f"must be > {number_text(low)}"))
        else:
            rules.append(Rule("<", low, f"must be >= {number_text(low)}"))
    if high is not None:
        rules.append(Rule(">", high, f"must be <= {number_text(high)}"))
    return rules


def field_rules(name: str) -> list[Rule]:
    """The rules `core.data.schema` sets for a number field, in the order messages give them."""
    spec = RECORD_FIELDS[name]
    rules = [Rule("not integer", None, "is not an integer")] if spec.kind == "integer" else []
    return rules + _bounds(spec.min, spec.max, spec.min_exclusive)


def spec_checks(name: str) -> list[Check]:
    """(fails, rule) pairs of a number field: the checks and messages of `clean()`."""
    return [(rule.fails, rule.text) for rule in field_rules(name)]


def schema_checks(name: str, entry: Mapping | None) -> list[Check]:
    """Bounds the manifest's input schema sets beyond core.data.schema's."""
    spec, entry = RECORD_FIELDS[name], entry or {}
    low, high = entry.get("min"), entry.get("max")
    rules = _bounds(low if low != spec.min else None, high if high != spec.max else None)
    return [(rule.fails, rule.text) for rule in rules]


# --- Messages -----------------------------------------------------------------------------------


def number_message(official: str, value: float, rule: str) -> str:
    return f"{official}={number_text(value)} {rule}"


def not_a_number(official: str, value) -> str:
    if isinstance(value, bool):  # JSON true/false: Python counts them as numbers, we do not
        return f"{official}={str(value).lower()} is not a number"
    return f"{official}='{value}' is not a number"


class RowErrors:
    """Error messages of the failing rows, gathered field by field: only they are looped over."""

    def __init__(self, n: int, initial: np.ndarray | None = None):
        self.n = n
        self.rows: dict[int, list[str]] = {}
        if initial is not None:  # from a batch: pandas is loaded
            import pandas as pd

            for row in np.flatnonzero(pd.notna(initial)).tolist():
                self.rows[row] = [initial[row]]

    def add(self, mask: np.ndarray, message: Callable[..., str]) -> None:
        """`message(row)` for each row of `mask` (a lambda may bind more by default)."""
        for row in np.flatnonzero(mask).tolist():
            self.rows.setdefault(row, []).append(message(row))

    def joined(self) -> np.ndarray:
        """One message per row, None where nothing failed."""
        out = np.full(self.n, None, dtype=object)
        for row, messages in self.rows.items():
            out[row] = "; ".join(messages)
        return out


def add_number_errors(
    errors: RowErrors,
    name: str,
    values: np.ndarray,
    floats: np.ndarray,
    not_number: np.ndarray,
    checks: Sequence[Check],
) -> None:
    """Add to `errors` a number field's message per failing row, as `clean()` words it: the
    value is not a number, else the first of `checks` it breaks. `values` as given,
    `floats` and `not_number` from `parse_numbers`."""
    official = RECORD_FIELDS[name].official
    errors.add(not_number, lambda row: not_a_number(official, values[row]))
    failed = np.isnan(floats)
    for fails, rule in checks:
        mask = ~failed
        mask[mask] = fails(floats[mask])
        errors.add(mask, _messages(official, floats, rule))
        failed |= mask


def _messages(official: str, floats: np.ndarray, rule: str) -> Callable[[int], str]:
    return lambda row: number_message(official, float(floats[row]), rule)


# --- Bulk cleaning in SQL -------------------------------------------------------------------


def _reason_sql(name: str) -> str:
    """Why a number field's value is rejected (NULL when it is valid): `add_number_errors`
    in SQL. `_text_<name>` holds the text when it is not a number."""
    official, text = RECORD_FIELDS[name].official, f"_text_{name}"
    prefix = _literal(official + "=")
    whens = [f"WHEN {text} IS NOT NULL THEN {prefix} || '''' || {text} || ''' is not a number'"]
    shown = f"{prefix} || {_number_text_sql(name)}"
    whens += [
        f"WHEN {rule.fails_sql(name)} THEN {shown} || {_literal(' ' + rule.text)}"
        for rule in field_rules(name)
    ]
    return f"CASE {' '.join(whens)} END"


def clean_sql(table: str) -> str:
    """SELECT cleaning `table` (the 63 official columns, as text) into the 63 typed
    snake_case columns + reject_reason + placeholder flags."""
    checked = [name for name, spec in RECORD_FIELDS.items() if spec.kind != "category"]
    text = ", ".join(f"{_trimmed_sql(_quote(o))} AS {snake}" for o, snake, _ in COLUMNS)
    parsed = [_parsed_sql(snake, kind) for _, snake, kind in COLUMNS]
    parsed += [f"{name} AS _raw_{name}" for name in checked]
    # NaN is missing; a text that is no number is kept (in _text_) for its message.
    typed = [
        f"nullif({snake}, 'NaN'::DOUBLE) AS {snake}" if kind in ("number", "integer") else snake
        for _, snake, kind in COLUMNS
    ]
    typed += [f"CASE WHEN {name} IS NULL THEN _raw_{name} END AS _text_{name}" for name in checked]
    final = [
        f"CASE WHEN {snake} = trunc({snake}) THEN TRY_CAST({snake} AS BIGINT) END AS {snake}"
        if kind == "integer"
        else snake
        for _, snake, kind in COLUMNS
    ]
    label = OFFICIAL_TO_SNAKE[LABEL_COLUMN]
    valid = ", ".join(_literal(x) for x in LABELS)
    reasons = [
        f"CASE WHEN {label} NOT IN ({valid}) "
        f"THEN {_literal(LABEL_COLUMN + '=')} || '''' || {label} || ''' is not a class A–G' END"
    ]
    reasons += [_reason_sql(name) for name in checked]
    final += [
        f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS reject_reason",
        f"coalesce(surface_utile = {SURFACE_PLACEHOLDER}, false) AS surface_placeholder",
        f"coalesce(conso_kwhep_m2_an = {CONSO_PLACEHOLDER}, false) AS conso_placeholder",
    ]
    layers = [final, typed, parsed]
    query = f"SELECT {text} FROM {table}"
    for columns in reversed(layers):
        query = f"SELECT {', '.join(columns)} FROM ({query})"
    return query


def _parsed_sql(snake: str, kind: str) -> str:
    """A trimmed text column as its type: numbers by `to_number`'s rule (NaN kept here)."""
    if kind == "string":
        return snake
    if kind == "date":
        return (
            f"COALESCE(TRY_CAST({snake} AS DATE), "
            f"TRY_CAST(try_strptime({snake}, '%d/%m/%Y') AS DATE)) AS {snake}"
        )
    return f"{_to_number_sql(snake)} AS {snake}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The 63 official columns as text: the frame's (by either name), or missing values."""
    import pandas as pd

    columns = source_columns(frame.columns)
    missing = pd.Series(pd.NA, index=frame.index, dtype="string")
    return pd.DataFrame(
        {
            official: frame[columns[official]].astype("string") if official in columns else missing
            for official, _, _ in COLUMNS
        },
        index=frame.index,
    )


# DuckDB plans `x IN (list)` as a hash join, which gives rows out of their input order once
# a scan runs on several threads (a DataFrame of more than 122,880 rows, a CSV of a few
# MB): cleaned rows are matched to their input by position, so that rewrite is off.
KEEP_ROW_ORDER = "SET disabled_optimizers = 'in_clause'"


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed snake_case columns (all 63), `reject_reason` (missing when valid) and the
    placeholder flags, one row per input row, same index. Input columns may be official
    ADEME names or snake_case, text or typed; unknown columns are left out."""
    import duckdb

    text = _text_frame(frame)
    with duckdb.connect() as con:
        con.execute(KEEP_ROW_ORDER)
        con.register("records", text)
        cleaned = con.execute(clean_sql("records")).df()
    cleaned.index = frame.index
    return cleaned
