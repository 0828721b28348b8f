"""Record fields -> the numeric matrix a model reads, with numpy only.

`FieldEncoding` holds what `core.modeling.features.RecordEncoder` (the sklearn transformer at the
head of every pipeline) learns and how it encodes; it imports neither sklearn nor pandas,
so that the API can encode records the moment it starts, before those ~1.2 s of imports
(see `core.serving.champion.serving_champions`).
"""

from collections.abc import Mapping

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
        array; None, or NaN in a float array, where missing): no DataFrame to take apart."""
        blocks = [self._numbers(name, columns[name]) for name in self.number_fields]
        blocks += [self._one_hot(name, columns[name]) for name in self.category_fields]
        if self.uses_rules:
            blocks.append(self._rule_features(columns))
        return np.hstack(blocks) if blocks else np.empty((0, 0))

    def _numbers(self, name: str, values: np.ndarray) -> np.ndarray:
        numbers = as_float(values)
        missing = np.isnan(numbers)
        parts = [np.where(missing, self.medians_[name], numbers), missing]
        if name in PLACEHOLDERS:
            parts.append(numbers == PLACEHOLDERS[name])
        return np.column_stack(parts).astype(float)

    def _one_hot(self, name: str, values: np.ndarray) -> np.ndarray:
        width = len(self._index[name])
        # Each value's column: its category's; `width` (missing) for None; -1 if not kept.
        column_of = {**self._index[name], None: width}
        texts = values
        if not all(value is None or type(value) is str for value in values):
            texts = np.array([v if v is None else str(v) for v in values], dtype=object)
        columns = np.array([column_of.get(value, -1) for value in texts], dtype=np.intp)
        encoded = np.zeros((len(columns), width + 1))
        rows = np.flatnonzero(columns >= 0)
        encoded[rows, columns[rows]] = 1.0
        return encoded

    def _rule_features(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        conso = as_float(columns["conso_kwhep_m2_an"])
        labels = [scales.label_index(conso, family) for family in scales.FAMILIES]
        sector_family = [scales.family_for_sector(s) for s in columns["secteur_activite"]]
        families = [np.array(sector_family) == family for family in scales.FAMILIES]
        return np.column_stack([np.nan_to_num(lab, nan=-1.0) for lab in labels] + families)
