"""Training fixtures made by code: a DPE_HOME holding an ingested dataset, MLflow over
SQLite (or a given server), and parameters that keep each family fast to train.

Shared by tests/core/test_train.py, tests/core/test_registry.py and tests/model/.
"""

import uuid
from pathlib import Path

from core.config import Settings
from core.data.ingest import ingest
from core.modeling.train import train
from tooling.synth import write_csv

# Few trees and iterations: tests check behaviour and logging, not accuracy.
FAST_PARAMS = {
    "rules": {},
    "sector-scale": {},
    "logreg": {},
    "rf": {"classify__n_estimators": 20},
    "hgb": {"classify__max_iter": 20},
    "scale": {"classify__n_estimators": 20},
}


def home_with_data(
    root: Path, source: Path | None = None, tracking_uri: str | None = None, rows: int = 1500
) -> Settings:
    """Settings on their own DPE_HOME under `root`, with `source` (default: `rows` generated
    records) ingested.

    Without a tracking server, MLflow's SQLite database sits beside `root` in the session's
    temporary folder, so every test shares it (creating one takes ~8 s). Each call gets its
    own experiment and registered model name: tests never see each other's runs.
    """
    unique = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,
        home=root / "home",
        mlflow_tracking_uri=tracking_uri or f"sqlite:///{root.parent / 'mlflow.db'}",
        experiment_name=f"dpe-test-{unique}",
        registered_model_name=f"dpe-test-{unique}",
    )
    source = source or write_csv(root / "records.csv", rows, seed=3)
    ingest(settings, source=source)
    return settings


def fast_train(settings: Settings, model: str, feature_set: str = "with-consumption", **options):
    """`core.modeling.train.train` with FAST_PARAMS, no search and 2 folds unless told otherwise."""
    options = {"search": "none", "cv": 2, "params": FAST_PARAMS[model], **options}
    return train(settings, feature_set, model, **options)
