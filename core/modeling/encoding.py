"""Record fields -> the numeric matrix a model reads, with numpy only.

`FieldEncoding` holds what `core.modeling.features.RecordEncoder` (the sklearn transformer at the
head of every pipeline) learns and how it encodes; it imports neither sklearn nor pandas,
so that the API can encode records the moment it starts, before those ~1.2 s of imports
(see `core.serving.champion.serving_champions`).
"""

from collections.abc import Callable, Mapping
from functools import partial

import numpy as np

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import RECORD_FIELDS
from core.modeling import scales

# ADEME placeholders: values typed in when the real one was unknown.
PLACEHOLDERS = {"surface_utile": 100.0, "conso_kwhep_m2_an": 0.1}


def as_float(values: np.ndarray) -> np.ndarray:
    """Numbers as floats (None -> NaN); text that is not a number is NaN too."""
    try:
        return values.astype(float)
    except ValueError:
        import pandas as pd  # text among the numbers: rare, and never at API start

        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)


class FieldEncoding:
    """The encoding of a fitted `RecordEncoder`: its feature set, categories and medians
    (set by `RecordEncoder.fit`), and `transform_columns`."""

    feature_set: str
    categories_: dict[str, list[str]]
    medians_: dict[str, float]
    _index: dict[str, dict[str | None, int]]  # category -> its column

    @property
    def fields(self) -> tuple[str, ...]:
        return FEATURE_SETS[self.feature_set].fields

    @property
    def category_fields(self) -> list[str]:
        return [f for f in self.fields if RECORD_FIELDS[f].kind == "category"]

    @property
    def number_fields(self) -> list[str]:
        return [f for f in self.fields if RECORD_FIELDS[f].kind != "category"]

    @property
    def uses_rules(self) -> bool:
        return "conso_kwhep_m2_an" in self.fields

    def transform_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """`transform` of records given as columns, as `columns_of` gives them (field ->
        array; None, or NaN in a float array, where missing): no DataFrame to take apart.
        Each field's block is written into one matrix allocated once (no `hstack` copy)."""
        blocks: list[tuple[int, Callable[[np.ndarray], None]]] = [
            (3 if name in PLACEHOLDERS else 2, partial(self._numbers, columns[name], name))
            for name in self.number_fields
        ]
        blocks += [
            (len(self._index[name]) + 1, partial(self._one_hot, columns[name], name))
            for name in self.category_fields
        ]
        if self.uses_rules:
            blocks.append((2 * len(scales.FAMILIES), partial(self._rule_features, columns)))
        if not blocks:
            return np.empty((0, 0))
        matrix = np.empty((len(columns[self.fields[0]]), sum(width for width, _ in blocks)))
        start = 0
        for width, fill in blocks:
            fill(matrix[:, start : start + width])
            start += width
        return matrix

    def _numbers(self, values: np.ndarray, name: str, out: np.ndarray) -> None:
        numbers = as_float(values)
        missing = np.isnan(numbers)
        out[:, 0] = np.where(missing, self.medians_[name], numbers)
        out[:, 1] = missing
        if name in PLACEHOLDERS:
            out[:, 2] = numbers == PLACEHOLDERS[name]

    def _one_hot(self, values: np.ndarray, name: str, out: np.ndarray) -> None:
        width = len(self._index[name])
        # Each value's column: its category's; `width` (missing) for None; -1 if not kept.
        column_of = {**self._index[name], None: width}
        found = distinct_rows(values)
        if found is None or not all(v is None or type(v) is str for v in found[0]):
            texts = [v if v is None else str(v) for v in values]  # (never from a CSV)
            found = distinct_rows(np.array(texts, dtype=object))
        assert found is not None  # texts and None hash
        distinct, rows = found
        columns = np.array([column_of.get(value, -1) for value in distinct], np.intp)[rows]
        out[:] = 0.0
        kept = np.flatnonzero(columns >= 0)
        out[kept, columns[kept]] = 1.0

    def _rule_features(self, columns: Mapping[str, np.ndarray], out: np.ndarray) -> None:
        conso = as_float(columns["conso_kwhep_m2_an"])
        count = len(scales.FAMILIES)
        for i, family in enumerate(scales.FAMILIES):
            out[:, i] = np.nan_to_num(scales.label_index(conso, family), nan=-1.0)
        sectors = columns["secteur_activite"]
        found = distinct_rows(sectors)
        if found is None:  # a value that cannot be hashed: sector by sector
            sector_family = np.array([scales.family_for_sector(s) for s in sectors])
        else:
            distinct, rows = found
            sector_family = np.array([scales.family_for_sector(s) for s in distinct])[rows]
        for i, family in enumerate(scales.FAMILIES):
            out[:, count + i] = sector_family == family


def distinct_rows(values: np.ndarray) -> tuple[list, np.ndarray] | None:
    """The distinct values of a column (by equality) and each row's index among them; None
    when a value cannot be hashed. A column of categories holds few: what depends on the
    value alone is then decided once per distinct value, not once per row."""
    items = values.tolist()
    try:
        index = {value: i for i, value in enumerate(dict.fromkeys(items))}
    except TypeError:
        return None
    return list(index), np.fromiter(map(index.__getitem__, items), np.intp, len(items))
