"""The encoder at the head of every model pipeline (the feature sets and the encoding
itself are in `core.modeling.encoding`).

A model is `Pipeline([("encode", RecordEncoder(feature_set)), ("classify", estimator)])`:
its input is the record fields of `core.data.schema.RECORD_FIELDS` (text categories, numbers,
missing values) as a DataFrame or a list of dicts, so the app, the API and the CLI all
send the same human-readable fields.

The encoder is written with numpy rather than a ColumnTransformer for two reasons:
one record and a batch go through exactly the same code (a `None` category in a one-row
frame is missing, as it is in a batch), and one record encodes in microseconds, which the
API's latency budget needs.
"""

from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from core.modeling import scales
from core.modeling.encoding import PLACEHOLDERS, FieldEncoding, as_float

Records: TypeAlias = pd.DataFrame | Sequence[Mapping] | Mapping


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


class RecordEncoder(FieldEncoding, TransformerMixin, BaseEstimator):
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
            median = np.nanmedian(as_float(columns[name])) if len(X) else np.nan
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
            names += [f"rule_label__{family}" for family in scales.FAMILIES]
            names += [f"rule_family={family}" for family in scales.FAMILIES]
        return names

    def transform(self, X: Records) -> np.ndarray:
        return self.transform_columns(columns_of(X, self.fields))

    def transform_columns(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return super().transform_columns(columns)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_
