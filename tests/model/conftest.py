"""Models the behavioural tests question, trained once per session through `core.modeling.train`
(logged to MLflow, loaded back from it): the rule model, the sector-scale model, a
with-consumption forest and the scale model, on the real ADEME sample when it is present,
else on generated records (a fresh clone)."""

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.data import warehouse
from core.modeling.train import labelled_rows
from tests.support.training import fast_train, home_with_data


@dataclass
class Trained:
    model: object  # the sklearn Pipeline, as MLflow gives it back
    model_uri: str
    family: str
    metrics: dict  # as train() logged them


@pytest.fixture(scope="session")
def training_source(request):
    """The real sample's path, or None (generated records) where it is absent."""
    try:
        return request.getfixturevalue("sample_csv")
    except pytest.skip.Exception:
        return None


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, training_source):
    return home_with_data(tmp_path_factory.mktemp("model"), source=training_source)


@pytest.fixture(scope="session")
def models(trained_home) -> dict[str, Trained]:
    found = {}
    trees = {"classify__n_estimators": 100}
    for family, params in (("rules", {}), ("sector-scale", {}), ("rf", trees), ("scale", trees)):
        result = fast_train(trained_home, family, params=params)
        model = mlflow.sklearn.load_model(result["model_uri"])
        found[family] = Trained(model, result["model_uri"], family, result["metrics"])
    return found


@pytest.fixture(scope="session")
def buildings(trained_home) -> pd.DataFrame:
    """Labelled records of the dataset, as the model's fields (None where missing)."""
    _, frame = warehouse.load_dataset(trained_home)
    X, _ = labelled_rows(frame, "with-consumption")
    X = X.sample(60, random_state=0).reset_index(drop=True).astype(object)
    return X.where(X.notna(), None)


@pytest.fixture(scope="session")
def generated_buildings(models) -> pd.DataFrame:
    """Buildings no dataset holds: each field drawn apart from the others among the values
    the encoder has seen, an unseen value or None; numbers around the training medians."""
    encoder = models["scale"].model.named_steps["encode"]
    rng = np.random.default_rng(7)
    records = []
    for _ in range(60):
        record = {}
        for name in encoder.category_fields:
            choices = [*encoder.known_values_[name], None, "une valeur jamais vue"]
            record[name] = choices[rng.integers(len(choices))]
        for name in encoder.number_fields:
            if rng.random() < 0.2:
                record[name] = None
            else:
                record[name] = float(abs(encoder.medians_[name] or 1.0) * rng.lognormal(0, 1))
        records.append(record)
    return pd.DataFrame(records, dtype=object)
