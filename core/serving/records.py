"""Records as the champion reads them: official ADEME names or snake_case, every field
optional, as columns (one array per field), unknown keys named with the closest fields."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from core.data.schema import OFFICIAL_TO_SNAKE, RECORD_FIELDS
from core.data.validation import (
    BLANKS,
    Problem,
    RowErrors,
    RowWarnings,
    parse_numbers,
)
from core.modeling.encoding import FieldEncoding

if TYPE_CHECKING:
    import pandas as pd


def snake_case_record(record: Mapping) -> Mapping:
    """Official ADEME names as snake_case; a snake_case key wins over its official twin."""
    if _OFFICIAL_NAMES.isdisjoint(record):
        return record
    renamed = {OFFICIAL_TO_SNAKE[k]: v for k, v in record.items() if k in OFFICIAL_TO_SNAKE}
    return {**renamed, **record}


_OFFICIAL_NAMES = frozenset(OFFICIAL_TO_SNAKE)
_KNOWN_KEYS = frozenset(RECORD_FIELDS) | _OFFICIAL_NAMES
_SORTED_KEYS = sorted(_KNOWN_KEYS)
MAX_NAMED_KEYS = 10  # unknown keys a record's message names; the others are counted
MAX_SHOWN_KEY = 64  # characters of an unknown key a message shows (field names: 33 at most)
_NUMBER_TYPES = frozenset({float, int, type(None)})
TEXT_TYPES = frozenset({str, type(None)})  # what JSON text values are: text or null


class RecordColumns(NamedTuple):
    """Records as columns (`read_records`)."""

    values: dict[str, np.ndarray]  # each field as given, text stripped, None where missing
    floats: dict[str, np.ndarray]  # per number field: NaN where missing or not a number
    not_numbers: dict[str, np.ndarray]  # per number field: where a value is not a number
    # Every value None, text, or in a number field an int or float (not true/false): the
    # types JSON records must have (api.schemas.Record); when False, some value has another.
    typed: bool


def read_records(records: Sequence[Mapping], blanks: str = BLANKS) -> RecordColumns:
    """`columns_of` records with snake_case or official ADEME names."""
    return columns_of([snake_case_record(record) for record in records], blanks)


def columns_of(records: Sequence[Mapping], blanks: str = BLANKS) -> RecordColumns:
    """Each record field as an object array: text stripped of `blanks`; blank text, None,
    NaN and NA are missing (None), as an empty CSV cell is. Also, per number field, its
    floats (NaN when missing or not a number) and where a value is not a number. Columns
    holding only what JSON gives (numbers, text, null) take a fast path; any other value
    the general one."""
    columns, floats, not_numbers = {}, {}, {}
    typed = True
    for name, spec in RECORD_FIELDS.items():
        raw = [record.get(name) for record in records]
        types = set(map(type, raw))
        number = spec.kind != "category"
        values = np.empty(len(raw), dtype=object)
        if number and types <= _NUMBER_TYPES:  # None and NaN -> NaN, as the general path
            numbers = np.array(raw, dtype=float)
            values[:] = raw
            values[np.isnan(numbers)] = None
            columns[name], floats[name] = values, numbers
            not_numbers[name] = np.zeros(len(raw), dtype=bool)
            continue
        typed = typed and not number and types <= TEXT_TYPES
        if types <= TEXT_TYPES:  # as clean() reads a CSV cell (validation.trimmed, inlined)
            values[:] = [v if v is None else v.strip(blanks) or None for v in raw]
        else:
            values[:] = [v.strip(blanks) or None if isinstance(v, str) else v for v in raw]
            import pandas as pd  # values JSON does not give: not at API start

            values[pd.isna(values)] = None
        columns[name] = values
        if number:
            floats[name], not_numbers[name] = parse_numbers(values)
    return RecordColumns(columns, floats, not_numbers, typed)


def check_keys(
    records: Sequence[Mapping],
    errors: RowErrors,
    warnings: RowWarnings,
    max_keys: int | None = None,
) -> None:
    """Warn of keys that are no record field (naming the first MAX_NAMED_KEYS, with the
    closest fields); a record whose keys are all unknown is an error: nothing of it would
    reach the model. So is one with more than `max_keys` keys, whose keys are not looked at
    (what naming keys costs must not grow with what a client sends)."""
    too_many = max_keys is not None and max(map(len, records), default=0) > max_keys
    if not too_many and _KNOWN_KEYS.issuperset(set().union(*records)):
        return  # the usual batch: nothing to say, found without a loop over its records
    for row, record in enumerate(records):
        if max_keys is not None and len(record) > max_keys:
            message = (
                f"the record has {len(record):,} keys, more than {max_keys} (DPE_MAX_RECORD_KEYS)"
            )
            problem = Problem(field=None, code="too_many_keys", message=message)
            errors.rows.setdefault(row, []).append(problem)
            continue
        unknown = record.keys() - _KNOWN_KEYS
        if not unknown:
            continue
        listed = sorted(map(str, unknown))
        names = ", ".join(f"'{_shown(key)}'{_closest(key)}" for key in listed[:MAX_NAMED_KEYS])
        if len(listed) > MAX_NAMED_KEYS:
            names += f" and {len(listed) - MAX_NAMED_KEYS} more"
        if len(unknown) == len(record):
            message = f"no field the model knows: {names}"
            problem = Problem(field=None, code="no_known_field", message=message)
            errors.rows.setdefault(row, []).append(problem)
        else:
            warnings.rows.setdefault(row, []).append(f"unknown field(s) ignored: {names}")


def _shown(key: str) -> str:
    return key if len(key) <= MAX_SHOWN_KEY else key[: MAX_SHOWN_KEY - 1] + "…"


@functools.lru_cache(maxsize=4096)  # clients repeat their misspellings record after record
def _closest(key: str) -> str:
    """` (did you mean x?)` for the field names closest to a misspelt key, else nothing."""
    if len(key) > MAX_SHOWN_KEY:  # no field name is that long; difflib's cost grows with it
        return ""
    # By snake_case name: a field and its official twin are one suggestion.
    close: dict[str, str] = {}
    for match in difflib.get_close_matches(key, _SORTED_KEYS, n=4, cutoff=0.75):
        close.setdefault(OFFICIAL_TO_SNAKE.get(match, match), match)
    names = list(close.values())[:2]
    return f" (did you mean {' or '.join(names)}?)" if names else ""


def unseen_category(official: str, value: str, known: frozenset[str] = frozenset()) -> str:
    """The warning for a category the model never saw, with the closest `known` ones: a typo
    is then one click from its fix."""
    return (
        f"{official}='{value}' is a category the model never saw in training: "
        f"predicted as an unknown one{_closest_category(value, known)}"
    )


@functools.lru_cache(maxsize=1024)
def _closest_category(value: str, known: frozenset[str]) -> str:
    """` (did you mean 'x'?)` for the known categories closest to `value`, case aside; cached:
    a batch repeats its unseen values."""
    by_folded = {category.casefold(): category for category in sorted(known)}
    # A typo scores above 0.9; two sectors that only share « Établissements de » about 0.78.
    matches = difflib.get_close_matches(value.casefold(), list(by_folded), n=2, cutoff=0.85)
    names = " or ".join(f"'{by_folded[match]}'" for match in matches)
    return f" (did you mean {names}?)" if names else ""


def fields_frame(records) -> pd.DataFrame:
    """The record fields as a DataFrame: numbers as floats, categories as text or None."""
    import pandas as pd

    if isinstance(records, pd.DataFrame):
        frame = records.reindex(columns=list(RECORD_FIELDS))
    else:
        frame = pd.DataFrame.from_records(list(records), columns=list(RECORD_FIELDS))
    for name, spec in RECORD_FIELDS.items():
        if spec.kind == "category":
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
        else:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """A `fields_frame` as the columns `FieldEncoding.transform_columns` takes: numbers as
    floats, categories as objects (None where missing)."""
    return {
        name: frame[name].to_numpy(dtype=object if spec.kind == "category" else float)
        for name, spec in RECORD_FIELDS.items()
    }


def synthetic_records(encoder: FieldEncoding, n: int) -> list[dict]:
    """Records spread over what the encoder knows (its categories, around its medians),
    with missing and unseen values, to check the fast engines against sklearn."""
    rng = np.random.default_rng(0)
    records: list[dict] = [{}]
    for _ in range(n - 1):
        record: dict[str, object] = {}
        for name in encoder.category_fields:
            choices = [*encoder.categories_[name], None, "not seen in training"]
            record[name] = choices[rng.integers(len(choices))]
        for name in encoder.number_fields:
            if rng.random() < 0.15:
                continue
            scale = encoder.medians_[name] or 1.0
            record[name] = float(abs(scale) * rng.lognormal(0.0, 1.0))
        records.append(record)
    return records
