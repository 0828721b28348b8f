"""Feature sets and the encoder at the head of every model pipeline.

A model is `Pipeline([("encode", RecordEncoder(feature_set)), ("classify", estimator)])`:
its input is the record fields of `core.schema.RECORD_FIELDS` (text categories, numbers,
missing values) as a DataFrame or a list of dicts, so the app, the API and the CLI all
send the same human-readable fields.

The encoder is written with numpy rather than a ColumnTransformer for two reasons:
one record and a batch go through exactly the same code (a `None` category in a one-row
frame is missing, as it is in a batch), and one record encodes in microseconds, which the
API's latency budget needs.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from core import rules
from core.schema import RECORD_FIELDS

CONSUMPTION_FIELDS = ("conso_kwhep_m2_an", "emission_ges_kgco2_m2_an", "conso_e_finale_energie_n_1")
BUILDING_FIELDS = tuple(name for name in RECORD_FIELDS if name not in CONSUMPTION_FIELDS)
FEATURE_SETS = {
    # What a manager knows before any diagnostic.
    "building-only": BUILDING_FIELDS,
    # The workshop's: includes the consumption, of which the label is a threshold (leaks).
    "with-consumption": BUILDING_FIELDS + CONSUMPTION_FIELDS,
}
LEAKING_FEATURE_SETS = {"with-consumption"}

# ADEME placeholders: values typed in when the real one was unknown.
PLACEHOLDERS = {"surface_utile": 100.0, "conso_kwhep_m2_an": 0.1}

Records = pd.DataFrame | Sequence[Mapping] | Mapping


def columns_of(records: Records, fields: Sequence[str]) -> dict[str, np.ndarray]:
    """Each field as an object array, from a DataFrame, a list of dicts or one dict.

    Absent fields, None, NaN and pandas' NA all become None: missing, whatever the container.
    """
    if isinstance(records, Mapping):
        records = [records]
    if isinstance(records, pd.DataFrame):
        columns = {
            name: np.array(records[name], dtype=object)
            if name in records
            else np.full(len(records), None)
            for name in fields
        }
    else:
        columns = {
            name: np.array([record.get(name) for record in records], dtype=object)
            for name in fields
        }
    for values in columns.values():
        values[pd.isna(values)] = None
    return columns


def _as_float(values: np.ndarray) -> np.ndarray:
    """Numbers as floats (None -> NaN); text that is not a number is NaN too."""
    try:
        return values.astype(float)
    except ValueError:
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)


class RecordEncoder(TransformerMixin, BaseEstimator):
    """Record fields -> numeric matrix.

    - numbers: the value (missing -> training median), a missing indicator, and a
      placeholder flag where ADEME uses one (surface exactly 100, consumption 0.1);
    - categories: one-hot over values seen at least `min_category_count` times in
      training, plus a "missing" column; a rarer or unseen value is all zeros
      (`known_values_` lists every value seen in training);
    - with the consumption: the label each official scale gives it (0 = A .. 6 = G,
      -1 when missing) and the scale the regulation assigns the sector, so a model
      learns which scale applies instead of relearning thresholds.
    """

    def __init__(self, feature_set: str = "building-only", min_category_count: int = 5):
        self.feature_set = feature_set
        self.min_category_count = min_category_count

    @property
    def fields(self) -> tuple[str, ...]:
        return FEATURE_SETS[self.feature_set]

    @property
    def category_fields(self) -> list[str]:
        return [f for f in self.fields if RECORD_FIELDS[f].kind == "category"]

    @property
    def number_fields(self) -> list[str]:
        return [f for f in self.fields if RECORD_FIELDS[f].kind != "category"]

    @property
    def uses_rules(self) -> bool:
        return "conso_kwhep_m2_an" in self.fields

    def fit(self, X: Records, y=None):
        columns = columns_of(X, self.fields)
        self.categories_, self.known_values_ = {}, {}
        for name in self.category_fields:
            counts = pd.Series(columns[name]).value_counts()
            kept = counts[counts >= self.min_category_count].index
            self.categories_[name] = sorted(str(value) for value in kept)
            # Rare values get no column of their own but are still values the model has seen.
            self.known_values_[name] = sorted(str(value) for value in counts.index)
        self.medians_ = {}
        for name in self.number_fields:
            median = np.nanmedian(_as_float(columns[name])) if len(X) else np.nan
            self.medians_[name] = 0.0 if np.isnan(median) else float(median)
        self._index = {
            name: {v: i for i, v in enumerate(c)} for name, c in self.categories_.items()
        }
        self.feature_names_out_ = np.array(self._feature_names(), dtype=object)
        return self

    def _feature_names(self) -> list[str]:
        names = []
        for name in self.number_fields:
            names += [name, f"{name}__missing"]
            if name in PLACEHOLDERS:
                names.append(f"{name}__placeholder")
        for name in self.category_fields:
            names += [f"{name}={value}" for value in self.categories_[name]]
            names.append(f"{name}__missing")
        if self.uses_rules:
            names += [f"rule_label__{family}" for family in rules.FAMILIES]
            names += [f"rule_family={family}" for family in rules.FAMILIES]
        return names

    def transform(self, X: Records) -> np.ndarray:
        return self.transform_columns(columns_of(X, self.fields))

    def transform_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """`transform` of records given as columns, as `columns_of` gives them (field ->
        array; None, or NaN in a float array, where missing): no DataFrame to take apart."""
        check_is_fitted(self, "feature_names_out_")
        blocks = [self._numbers(name, columns[name]) for name in self.number_fields]
        blocks += [self._one_hot(name, columns[name]) for name in self.category_fields]
        if self.uses_rules:
            blocks.append(self._rule_features(columns))
        return np.hstack(blocks) if blocks else np.empty((0, 0))

    def _numbers(self, name: str, values: np.ndarray) -> np.ndarray:
        numbers = _as_float(values)
        missing = np.isnan(numbers)
        parts = [np.where(missing, self.medians_[name], numbers), missing]
        if name in PLACEHOLDERS:
            parts.append(numbers == PLACEHOLDERS[name])
        return np.column_stack(parts).astype(float)

    def _one_hot(self, name: str, values: np.ndarray) -> np.ndarray:
        width = len(self._index[name])
        # Each value's column: its category's; `width` (missing) for None; -1 if not kept.
        column_of = {**self._index[name], None: width}
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            values = [v if v is None else str(v) for v in values]
        columns = np.array([column_of.get(value, -1) for value in values], dtype=np.intp)
        encoded = np.zeros((len(columns), width + 1))
        rows = np.flatnonzero(columns >= 0)
        encoded[rows, columns[rows]] = 1.0
        return encoded

    def _rule_features(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        conso = _as_float(columns["conso_kwhep_m2_an"])
        labels = [rules.label_index(conso, family) for family in rules.FAMILIES]
        sector_family = [rules.family_for_sector(s) for s in columns["secteur_activite"]]
        families = [np.array(sector_family) == family for family in rules.FAMILIES]
        return np.column_stack([np.nan_to_num(lab, nan=-1.0) for lab in labels] + families)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_
