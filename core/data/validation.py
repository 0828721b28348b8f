"""Record validation, written once: the rules come from `core.data.schema.RECORD_FIELDS`.

Each rule of a number field (field, predicate, code, message) compiles two ways:
- to numpy, for records (`Champion.predict`): `spec_checks(name)` and `add_number_errors`;
- to SQL, for bulk cleaning (`clean_sql`, run by DuckDB over a whole source at ingest and
  over a DataFrame by `clean()`).
Both show values with the same formatter and read text the same way (trimmed, blank or NaN
is missing, decimal comma or point), so a value gets the same message and code either way.

A problem is data: `Problem` = {"field", "code", "message"}, its code one of `ERROR_CODES`.
Where a row's problems are joined into text, messages are joined by `; ` (`error`,
`reject_reason`) and their codes, in the same order, by `|` (`error_code`, `reject_code`).

This module imports numpy only: the API loads it at start; DuckDB and pandas are imported
by `clean()` when it runs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

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

BLANKS = " \t\r\n\f\v"  # what is trimmed off text, in records and in bulk alike
# Dates that cannot be later than the day a record is ingested (its validity end can), and
# the days of slack for clocks and time zones. A far-future reception date would otherwise
# stall the lifecycle's watermark (issue 24, item 5).
PAST_DATES = ("Date_réception_DPE", "Date_établissement_DPE", "Date_visite_diagnostiqueur")
FUTURE_TOLERANCE_DAYS = 2
LABEL_FIELD = OFFICIAL_TO_SNAKE[LABEL_COLUMN]

# Why a record cannot be predicted (nor, once ingested, trained on): each problem's `code`.
# One table, shown by the README (section "Errors") and by the Batch page.
ERROR_CODES = {
    "not_a_number": "text (or true/false) where a number is expected",
    "not_an_integer": "a number with decimals where a whole number is expected (a year)",
    "below_minimum": "a number below the field's lower bound, or at it when the bound is "
    "excluded (a surface of 0)",
    "above_maximum": "a number above the field's upper bound",
    "not_text": "something other than text (a number, true/false) in a category field",
    "not_a_label": f"an {LABEL_COLUMN} other than A–G (in a file or at ingest)",
    "no_known_field": "a record none of whose keys is a field the model knows",
    "too_many_keys": "a JSON record with more keys than DPE_MAX_RECORD_KEYS (its keys unread)",
    "in_the_future": "a DPE's reception, establishment or visit date later than the day it "
    f"is ingested + {FUTURE_TOLERANCE_DAYS} days (at ingest)",
}
# Problems joined into one text: messages by MESSAGE_SEPARATOR, codes by CODE_SEPARATOR.
MESSAGE_SEPARATOR, CODE_SEPARATOR = "; ", "|"


class Problem(TypedDict):
    """One reason a record cannot be predicted."""

    field: str | None  # the record field (snake_case name); None: the record as a whole
    code: str  # one of ERROR_CODES
    # Names the field (official name) and the value: "Surface_utile=0 must be > 0".
    message: str


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
    code: str  # one of ERROR_CODES
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
            rules.append(Rule("<=", low, "below_minimum", f"must be > {number_text(low)}"))
        else:
            rules.append(Rule("<", low, "below_minimum", f"must be >= {number_text(low)}"))
    if high is not None:
        rules.append(Rule(">", high, "above_maximum", f"must be <= {number_text(high)}"))
    return rules


def field_rules(name: str) -> list[Rule]:
    """The rules `core.data.schema` sets for a number field, in the order messages give them."""
    spec = RECORD_FIELDS[name]
    integer = spec.kind == "integer"
    rules = [Rule("not integer", None, "not_an_integer", "is not an integer")] if integer else []
    return rules + _bounds(spec.min, spec.max, spec.min_exclusive)


def spec_checks(name: str) -> list[Rule]:
    """The checks of a number field, as `clean()` makes them (its codes and messages)."""
    return field_rules(name)


def schema_checks(name: str, entry: Mapping | None) -> list[Rule]:
    """Bounds the manifest's input schema sets beyond core.data.schema's."""
    spec, entry = RECORD_FIELDS[name], entry or {}
    low, high = entry.get("min"), entry.get("max")
    return _bounds(low if low != spec.min else None, high if high != spec.max else None)


# --- Messages -----------------------------------------------------------------------------------


def number_message(official: str, value: float, rule: str) -> str:
    return f"{official}={number_text(value)} {rule}"


def not_a_number(official: str, value) -> str:
    if isinstance(value, bool):  # JSON true/false: Python counts them as numbers, we do not
        return f"{official}={str(value).lower()} is not a number"
    return f"{official}='{value}' is not a number"


class RowErrors:
    """The problems of the failing rows, gathered field by field: only they are looped over."""

    def __init__(self, n: int):
        self.n = n
        self.rows: dict[int, list[Problem]] = {}

    def add(self, mask: np.ndarray, field: str | None, code: str, message: Callable) -> None:
        """A problem `code` of `field` for each row of `mask`, worded by `message(row)` (a
        lambda may bind more by default)."""
        for row in np.flatnonzero(mask).tolist():
            problem = Problem(field=field, code=code, message=message(row))
            self.rows.setdefault(row, []).append(problem)

    def add_found(self, field: str, codes: np.ndarray, messages: np.ndarray) -> None:
        """Problems of `field` found by `clean()` (its `by_field` columns): a code and a
        message per row, missing where the value is valid."""
        import pandas as pd  # from a batch: pandas is loaded

        for row in np.flatnonzero(pd.notna(messages)).tolist():
            problem = Problem(field=field, code=codes[row], message=messages[row])
            self.rows.setdefault(row, []).append(problem)

    def messages(self) -> np.ndarray:
        """Per row, its messages joined by `; `; None where nothing failed."""
        return _joined(self.n, self.rows, MESSAGE_SEPARATOR, "message")

    def codes(self) -> np.ndarray:
        """Per row, its codes joined by `|` in the order of the messages; None where nothing
        failed."""
        return _joined(self.n, self.rows, CODE_SEPARATOR, "code")


class RowWarnings:
    """Warnings of the rows that have some (text: a record with warnings is predicted)."""

    def __init__(self, n: int):
        self.n = n
        self.rows: dict[int, list[str]] = {}

    def add(self, mask: np.ndarray, message: Callable[..., str]) -> None:
        """`message(row)` for each row of `mask` (a lambda may bind more by default)."""
        for row in np.flatnonzero(mask).tolist():
            self.rows.setdefault(row, []).append(message(row))

    def joined(self) -> np.ndarray:
        """One text per row, its warnings joined by `; `; None where there is none."""
        out = np.full(self.n, None, dtype=object)
        for row, messages in self.rows.items():
            out[row] = MESSAGE_SEPARATOR.join(messages)
        return out


def _joined(n: int, rows: dict[int, list[Problem]], separator: str, key: str) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    for row, problems in rows.items():
        out[row] = separator.join(problem[key] for problem in problems)  # type: ignore[literal-required]
    return out


def add_number_errors(
    errors: RowErrors,
    name: str,
    values: np.ndarray,
    floats: np.ndarray,
    not_number: np.ndarray,
    checks: Sequence[Rule],
) -> None:
    """Add to `errors` a number field's problem per failing row, as `clean()` finds and
    words it: the value is not a number, else the first of `checks` it breaks. `values` as
    given, `floats` and `not_number` from `parse_numbers`."""
    official = RECORD_FIELDS[name].official
    errors.add(not_number, name, "not_a_number", lambda row: not_a_number(official, values[row]))
    failed = np.isnan(floats)
    for rule in checks:
        mask = ~failed
        mask[mask] = rule.fails(floats[mask])
        errors.add(mask, name, rule.code, _messages(official, floats, rule.text))
        failed |= mask


def _messages(official: str, floats: np.ndarray, rule: str) -> Callable[[int], str]:
    return lambda row: number_message(official, float(floats[row]), rule)


# --- Bulk cleaning in SQL -------------------------------------------------------------------


def _problem_sql(name: str) -> tuple[str, str]:
    """Why a number field's value is rejected and its code (NULL both when it is valid):
    `add_number_errors` in SQL. `_text_<name>` holds the text when it is not a number."""
    official, text = RECORD_FIELDS[name].official, f"_text_{name}"
    prefix = _literal(official + "=")
    shown = f"{prefix} || {_number_text_sql(name)}"
    whens = [
        (
            f"{text} IS NOT NULL",
            f"{prefix} || '''' || {text} || ''' is not a number'",
            "not_a_number",
        )
    ]
    whens += [
        (rule.fails_sql(name), f"{shown} || {_literal(' ' + rule.text)}", rule.code)
        for rule in field_rules(name)
    ]
    reason = " ".join(f"WHEN {when} THEN {message}" for when, message, _ in whens)
    code = " ".join(f"WHEN {when} THEN {_literal(code)}" for when, _, code in whens)
    return f"CASE {reason} END", f"CASE {code} END"


def _future_problem_sql(official: str) -> tuple[str, str]:
    """Why a date is rejected and its code: later than today (DuckDB's `current_date`) +
    the tolerance."""
    date = OFFICIAL_TO_SNAKE[official]
    late = f"{date} > current_date + {FUTURE_TOLERANCE_DAYS}"
    message = f"{_literal(official + '=')} || strftime({date}, '%Y-%m-%d') || ' is in the future'"
    return f"CASE WHEN {late} THEN {message} END", f"CASE WHEN {late} THEN 'in_the_future' END"


def _label_problem_sql() -> tuple[str, str]:
    wrong = f"{LABEL_FIELD} NOT IN ({', '.join(_literal(x) for x in LABELS)})"
    message = f"{_literal(LABEL_COLUMN + '=')} || '''' || {LABEL_FIELD} || ''' is not a class A–G'"
    return f"CASE WHEN {wrong} THEN {message} END", f"CASE WHEN {wrong} THEN 'not_a_label' END"


# The fields `clean()` checks, in the order their problems are joined.
CHECKED_FIELDS = tuple(name for name, spec in RECORD_FIELDS.items() if spec.kind != "category")
REJECT_FIELDS = (LABEL_FIELD, *CHECKED_FIELDS)
# Checked at ingest only (a prediction's record has no dates).
DATE_FIELDS = tuple(OFFICIAL_TO_SNAKE[official] for official in PAST_DATES)


def clean_sql(table: str, by_field: bool = False, carry: Sequence[str] = ()) -> str:
    """SELECT cleaning `table` (the 63 official columns, as text) into the 63 typed
    snake_case columns + reject_reason, reject_code + placeholder flags; `by_field` adds,
    for each of REJECT_FIELDS, its problem's `_code_<field>` and `_reason_<field>`; `carry`
    names more columns of `table`, passed through as they are (after the others)."""
    text = ", ".join(
        [f"{_trimmed_sql(_quote(o))} AS {snake}" for o, snake, _ in COLUMNS] + list(carry)
    )
    parsed = [_parsed_sql(snake, kind) for _, snake, kind in COLUMNS]
    parsed += [f"{name} AS _raw_{name}" for name in CHECKED_FIELDS]
    # NaN is missing; a text that is no number is kept (in _text_) for its message.
    typed = [
        f"nullif({snake}, 'NaN'::DOUBLE) AS {snake}" if kind in ("number", "integer") else snake
        for _, snake, kind in COLUMNS
    ]
    typed += [
        f"CASE WHEN {name} IS NULL THEN _raw_{name} END AS _text_{name}" for name in CHECKED_FIELDS
    ]
    final = [
        f"CASE WHEN {snake} = trunc({snake}) THEN TRY_CAST({snake} AS BIGINT) END AS {snake}"
        if kind == "integer"
        else snake
        for _, snake, kind in COLUMNS
    ]
    problems = {LABEL_FIELD: _label_problem_sql()}
    problems.update({name: _problem_sql(name) for name in CHECKED_FIELDS})
    problems.update({OFFICIAL_TO_SNAKE[o]: _future_problem_sql(o) for o in PAST_DATES})
    for name, (reason, code) in problems.items():
        final += [f"{reason} AS _reason_{name}", f"{code} AS _code_{name}"]
    final += [
        f"coalesce(surface_utile = {SURFACE_PLACEHOLDER}, false) AS surface_placeholder",
        f"coalesce(conso_kwhep_m2_an = {CONSO_PLACEHOLDER}, false) AS conso_placeholder",
    ]
    reasons = ", ".join(f"_reason_{name}" for name in (*REJECT_FIELDS, *DATE_FIELDS))
    codes = ", ".join(f"_code_{name}" for name in (*REJECT_FIELDS, *DATE_FIELDS))
    joined = [
        *(snake for _, snake, _ in COLUMNS),
        f"NULLIF(concat_ws({_literal(MESSAGE_SEPARATOR)}, {reasons}), '') AS reject_reason",
        f"NULLIF(concat_ws({_literal(CODE_SEPARATOR)}, {codes}), '') AS reject_code",
        "surface_placeholder",
        "conso_placeholder",
    ]
    if by_field:  # codes as an ENUM: pandas gets a categorical, 5x cheaper than text
        codes_type = f"ENUM({', '.join(map(_literal, ERROR_CODES))})"
        for name in REJECT_FIELDS:
            joined += [f"CAST(_code_{name} AS {codes_type}) AS _code_{name}", f"_reason_{name}"]
    layers = [joined, final, typed, parsed]
    query = f"SELECT {text} FROM {table}"
    for columns in reversed(layers):
        query = f"SELECT {', '.join([*columns, *carry])} FROM ({query})"
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


def clean(frame: pd.DataFrame, by_field: bool = False) -> pd.DataFrame:
    """Typed snake_case columns (all 63), `reject_reason` and `reject_code` (missing when
    valid) and the placeholder flags, one row per input row, same index; `by_field`: each
    field's problem too (`clean_sql`). Input columns may be official ADEME names or
    snake_case, text or typed; unknown columns are left out."""
    import duckdb

    text = _text_frame(frame)
    with duckdb.connect() as con:
        con.execute(KEEP_ROW_ORDER)
        con.register("records", text)
        cleaned = con.execute(clean_sql("records", by_field)).df()
    cleaned.index = frame.index
    return cleaned
