"""A champion in the model store, written the way promotion writes it, without MLflow.

`publish_champion` lays out `models/dpe/champion/v<N>/` (MLmodel, model.skops, input example)
and then, last, `manifest.json` with the sha256 of every file: the contract
`core.tracking.champion_store` holds. Given `model_dir` (a directory
`mlflow.sklearn.save_model` wrote) it publishes that directory instead, so
`mlflow models serve` can serve the same files.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from core.config import Settings
from core.data.schema import LABELS, RECORD_FIELDS
from core.data.validation import clean
from core.modeling.features import RecordEncoder
from core.storage import Store
from core.tracking.champion_store import Manifest, input_schema, publish
from core.tracking.model_format import SKOPS_FILE
from tooling.synth import generate_records

FEATURE_SET = "with-consumption"
MLMODEL_STUB = """\
# Written by tests/support/champion.py: the files promotion exports, without MLflow.
flavors:
  sklearn:
    pickled_model: model.skops
    serialization_format: skops
"""


def labelled(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Cleaned, valid, labelled records (fields, label) of official- or snake_case-named rows."""
    cleaned = clean(records)
    keep = cleaned["reject_reason"].isna() & cleaned["etiquette_dpe"].isin(LABELS)
    return cleaned.loc[keep, list(RECORD_FIELDS)], cleaned.loc[keep, "etiquette_dpe"]


def train_pipeline(
    records: pd.DataFrame | None = None,
    n_estimators: int = 30,
    seed: int = 0,
    feature_set: str = FEATURE_SET,
) -> Pipeline:
    """A RecordEncoder + RandomForest pipeline on `records` (default: 3,000 generated ones)."""
    X, y = labelled(records if records is not None else generate_records(3000, seed=seed))
    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=1)
    return Pipeline([("encode", RecordEncoder(feature_set)), ("classify", forest)]).fit(X, y)


def input_example(pipeline: Pipeline, rows: int = 3) -> dict:
    """A few records in MLflow's pandas "split" format, as `input_example.json` holds them;
    the last one all missing, so a signature inferred from it has every field optional."""
    encoder = pipeline.named_steps["encode"]
    if not hasattr(encoder, "fields"):  # a rule model's RecordFrame: its sectors, consumptions
        sectors = encoder.known_values_["secteur_activite"]
        data = [
            [sectors[i % len(sectors)], 100.0 * (1 + i)][: len(encoder.fields_)]
            for i in range(rows)
        ]
        return {"columns": list(encoder.fields_), "data": [*data, [None] * len(encoder.fields_)]}
    columns = list(encoder.fields)
    data = []
    for i in range(rows):
        row = []
        for name in columns:
            if name in encoder.categories_:
                values = encoder.categories_[name]
                row.append(values[i % len(values)] if values else None)
            else:
                row.append(encoder.medians_[name] * (1 + i))
        data.append(row)
    return {"columns": columns, "data": [*data, [None] * len(columns)]}


def _stub_files(pipeline: Pipeline) -> dict[str, bytes]:
    example = json.dumps(input_example(pipeline), ensure_ascii=False).encode()
    return {
        "MLmodel": MLMODEL_STUB.encode(),
        SKOPS_FILE: skops.io.dumps(pipeline),
        "input_example.json": example,
    }


def _directory_files(model_dir: Path) -> dict[str, bytes]:
    return {
        path.relative_to(model_dir).as_posix(): path.read_bytes()
        for path in sorted(model_dir.rglob("*"))
        if path.is_file()
    }


def publish_champion(
    settings: Settings,
    pipeline: Pipeline,
    version: int,
    model_dir: Path | None = None,
    run_id: str | None = None,
) -> Manifest:
    """Publish champion `version` to the store as promotion does (`champion_store.publish`:
    files first, manifest last); returns the manifest."""
    files = _directory_files(model_dir) if model_dir else _stub_files(pipeline)
    prefix = f"v{version}"
    manifest = Manifest(
        registered_model="dpe",
        model_version=str(version),
        run_id=run_id or f"test-run-{version}",
        model_uri=f"models:/dpe/{version}",
        promoted_at=datetime.now(UTC).isoformat(),
        dataset_version="test",
        feature_set=pipeline.named_steps["encode"].feature_set,
        model_family="rf",
        labels=list(LABELS),
        metrics={"accuracy": None, "macro_f1": None},
        input_schema=input_schema(pipeline),
        model_dir=prefix,
        model_file=f"{prefix}/{SKOPS_FILE}",
        files={},
    )
    published = {f"{prefix}/{relative}": data for relative, data in files.items()}
    return publish(Store(settings), published, manifest)


def sample_records(n: int = 3000, seed: int = 1) -> list[dict]:
    """Generated records as the API takes them: snake_case fields, None when missing."""
    X, _ = labelled(generate_records(n, seed=seed))
    return [
        {name: (None if pd.isna(value) else value) for name, value in row.items()}
        for row in X.astype(object).to_dict("records")
    ]


def as_floats(proba: dict | None) -> np.ndarray | None:
    return None if proba is None else np.array([proba[label] for label in LABELS])


def probabilities(results: list[dict]) -> np.ndarray:
    """The (n, 7) probabilities of predictions as `Champion.predict` returns them."""
    return np.array([as_floats(result["probabilities"]) for result in results])
