"""Behavioural tests (Made With ML style) of the rule model and a with-consumption forest:
directional expectations, invariances, robustness to odd input, single vs batch."""

import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest

from core.schema import LABELS

FAMILIES = ["rules", "rf"]
CONSUMPTIONS = np.arange(0.0, 1500.0, 5.0)  # kWhEP/m²/an: across every scale's bounds
ODD_RECORDS = [
    {},  # every field missing
    {"conso_kwhep_m2_an": 120.0},
    {"secteur_activite": "Z : un secteur inconnu", "periode_construction": "demain"},
    {"secteur_activite": None, "categorie_erp": None, "conso_kwhep_m2_an": None},
    {"surface_utile": "n/a", "annee_construction": "vers 1950"},  # text in number fields
    {"secteur_activite": "GHW : Bureaux", "conso_kwhep_m2_an": 1e6, "surface_utile": 1e-3},
]


def label_index(labels) -> np.ndarray:
    return np.array([LABELS.index(label) for label in labels])


def consumption_grid(record: dict) -> list[dict]:
    return [{**record, "conso_kwhep_m2_an": value} for value in CONSUMPTIONS]


def worsening(model, buildings: pd.DataFrame) -> list[int]:
    """Rows of `buildings` whose label gets better somewhere as the consumption rises."""
    found = []
    for row, record in enumerate(buildings.to_dict("records")):
        steps = np.diff(label_index(model.predict(consumption_grid(record))))
        if (steps < 0).any():
            found.append(row)
    return found


def test_raising_the_consumption_never_gives_a_better_label_with_the_rules(models, buildings):
    assert worsening(models["rules"].model, buildings) == []


@pytest.mark.xfail(
    reason="a finding, not a bug in the code: the forest is not monotone in the consumption "
    "(bench/bench_train.py measures how often, in docs/benchmarks.md); HistGradientBoosting's "
    "monotonic_cst, the usual remedy, is refused for multiclass problems",
    strict=False,
)
def test_raising_the_consumption_never_gives_a_better_label_with_the_forest(models, buildings):
    assert worsening(models["rf"].model, buildings) == []


@pytest.mark.parametrize("family", FAMILIES)
def test_a_much_higher_consumption_never_gives_a_better_label(models, buildings, family):
    model = models[family].model
    records = buildings.to_dict("records")
    low = model.predict([{**r, "conso_kwhep_m2_an": 20.0} for r in records])
    high = model.predict([{**r, "conso_kwhep_m2_an": 1500.0} for r in records])
    assert (label_index(high) >= label_index(low)).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_predictions_do_not_depend_on_the_dpe_number(models, buildings, family):
    model = models[family].model
    records = buildings.to_dict("records")
    numbered = [{**r, "n_dpe": f"2101T{i:07d}X", "N°DPE": str(i)} for i, r in enumerate(records)]
    renumbered = [{**r, "n_dpe": "9999T0000000Z", "N°DPE": "x"} for r in records]
    expected = model.predict_proba(records)
    assert np.array_equal(model.predict_proba(numbered), expected)
    assert np.array_equal(model.predict_proba(renumbered), expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_categories_and_missing_fields_do_not_crash(models, family):
    model = models[family].model
    proba = model.predict_proba(ODD_RECORDS)
    assert proba.shape == (len(ODD_RECORDS), len(model.classes_))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert set(model.predict(ODD_RECORDS)) <= set(LABELS)


def with_gaps(buildings: pd.DataFrame) -> list[dict]:
    """The buildings, then copies with fields missing, None, or absent from the dict."""
    records = buildings.to_dict("records")
    gappy = [{**r, "secteur_activite": None, "periode_construction": None} for r in records[:10]]
    sparse = [{k: v for k, v in r.items() if k != "categorie_erp"} for r in records[:10]]
    return records + gappy + sparse + ODD_RECORDS[:4]


@pytest.mark.parametrize("family", FAMILIES)
def test_one_record_predicts_exactly_as_in_a_batch(models, buildings, family):
    model = models[family].model
    records = with_gaps(buildings)
    batch = model.predict_proba(records)
    frame = pd.DataFrame(records)
    for row, record in enumerate(records):
        assert np.array_equal(model.predict_proba([record])[0], batch[row])
        assert np.array_equal(model.predict_proba(record)[0], batch[row])  # one dict
        assert np.array_equal(model.predict_proba(frame.iloc[[row]])[0], batch[row])
    assert np.array_equal(model.predict_proba(frame), batch)


@pytest.mark.parametrize("family", FAMILIES)
def test_mlflow_pyfunc_gives_one_record_the_label_it_gives_in_a_batch(models, buildings, family):
    pyfunc = mlflow.pyfunc.load_model(models[family].model_uri)
    # Not the empty record: MLflow turns a one-row frame without columns into zero rows.
    records = [record for record in with_gaps(buildings) if record]
    batch = pd.DataFrame(records)
    labels = pyfunc.predict(batch)
    assert list(labels) == list(models[family].model.predict(records))
    for row, record in enumerate(records):
        # A one-row frame: a None category is an object column here, not a float one.
        assert pyfunc.predict(pd.DataFrame([record]))[0] == labels[row]


@pytest.mark.slow
def test_the_logged_model_loads_without_this_repository(models, buildings, tmp_path):
    """`mlflow models serve` imports the model from its own code/ copy of `core`."""
    model_dir = mlflow.artifacts.download_artifacts(models["rf"].model_uri, dst_path=tmp_path)
    record = json.loads(json.dumps(buildings.iloc[0].to_dict(), default=float))
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        assert importlib.util.find_spec("core") is None, "the repository is on sys.path"
        import mlflow, pandas as pd
        model = mlflow.pyfunc.load_model({str(model_dir)!r})
        records = json.loads({json.dumps([record])!r})
        print(json.dumps(list(model.predict(pd.DataFrame(records)))))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith(f'["{models["rf"].model.predict([record])[0]}"]')
