"""Behavioural tests (Made With ML style) of the rule model, the sector-scale model, a
with-consumption forest and the scale model: directional expectations, invariances,
robustness to odd input, single vs batch."""

import json
import os
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from core.data import warehouse
from core.data.schema import LABELS
from core.modeling.evaluate import label_indices, monotonicity_violations, non_monotone
from core.modeling.models import label_index_from_proba
from core.modeling.train import SEED, TEST_SIZE, held_out
from tests.support.sources import UNSEEN_SECTORS

FAMILIES = ["rules", "sector-scale", "rf", "scale"]
MONOTONE = ["rules", "sector-scale", "scale"]  # by construction; the forest is not (measured)
ODD_RECORDS = [
    {},  # every field missing
    {"conso_kwhep_m2_an": 120.0},
    {"secteur_activite": "Z : un secteur inconnu", "periode_construction": "demain"},
    {"secteur_activite": None, "categorie_erp": None, "conso_kwhep_m2_an": None},
    {"surface_utile": "n/a", "annee_construction": "vers 1950"},  # text in number fields
    {"secteur_activite": "GHW : Bureaux", "conso_kwhep_m2_an": 1e6, "surface_utile": 1e-3},
]


@pytest.mark.parametrize("family", MONOTONE)
def test_raising_the_consumption_never_gives_a_better_label(
    models, buildings, generated_buildings, family
):
    """Every building, real or generated, over 0..1,495 kWhEP/m²/an in 5-unit steps."""
    model = models[family].model
    assert np.flatnonzero(non_monotone(model, buildings)).tolist() == []
    assert np.flatnonzero(non_monotone(model, generated_buildings)).tolist() == []


def test_how_often_a_model_is_not_monotone_is_measured_and_logged(models, trained_home):
    """The forest is not monotone in the consumption: not asserted, measured. Every
    with-consumption run logs the fraction of its test buildings that get a better label
    somewhere as only their consumption rises; 0 for the rules and the scale model."""
    _, frame = warehouse.load_dataset(trained_home)
    X_test = held_out(frame, "with-consumption", "time", TEST_SIZE, SEED).X_test  # train()'s
    client = MlflowClient(trained_home.tracking_uri)
    for family, trained in models.items():
        run_id = mlflow.models.get_model_info(trained.model_uri).run_id
        logged = client.get_run(run_id).data.metrics["monotonicity_violations"]
        assert logged == pytest.approx(trained.metrics["monotonicity_violations"])
        assert 0.0 <= logged <= 1.0
        if family in MONOTONE:
            assert logged == 0.0
    forest = models["rf"]
    assert forest.metrics["monotonicity_violations"] == monotonicity_violations(
        forest.model, X_test
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_a_much_higher_consumption_never_gives_a_better_label(models, buildings, family):
    model = models[family].model
    records = buildings.to_dict("records")
    low = model.predict([{**r, "conso_kwhep_m2_an": 20.0} for r in records])
    high = model.predict([{**r, "conso_kwhep_m2_an": 1500.0} for r in records])
    assert (label_indices(high) >= label_indices(low)).all()


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


@pytest.mark.parametrize("family", FAMILIES)
def test_a_sector_never_seen_in_training_is_predicted(models, buildings, family):
    """An unseen sector is unknown to the encoder, not a reason to refuse the record: the
    model gives a label, and the scale-based models stay monotone in the consumption."""
    model = models[family].model
    base = buildings.iloc[0].to_dict()
    records = [{**base, "secteur_activite": sector} for sector in UNSEEN_SECTORS]
    assert set(model.predict(records)) <= set(LABELS)
    assert np.allclose(model.predict_proba(records).sum(axis=1), 1.0)
    if family in MONOTONE:
        assert not non_monotone(model, records).any()


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
    labels = model.predict(records)
    frame = pd.DataFrame(records)
    for row, record in enumerate(records):
        assert np.array_equal(model.predict_proba([record])[0], batch[row])
        assert np.array_equal(model.predict_proba(record)[0], batch[row])  # one dict
        assert np.array_equal(model.predict_proba(frame.iloc[[row]])[0], batch[row])
        assert model.predict(frame.iloc[[row]])[0] == labels[row]
    assert np.array_equal(model.predict_proba(frame), batch)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_label_follows_from_the_probabilities(models, buildings, generated_buildings, family):
    """What code that only keeps the probabilities (serving) must do to give the model's
    label: `label_index_from_proba` (the scale model's label is their median, not argmax)."""
    model = models[family].model
    records = [*with_gaps(buildings), *generated_buildings.to_dict("records")]
    expected = label_indices(model.predict(records))
    proba = model.predict_proba(records)
    assert np.array_equal(label_index_from_proba(model, proba), expected)
    assert np.array_equal(label_index_from_proba(model.named_steps["classify"], proba), expected)


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
@pytest.mark.parametrize("family", ["rf", "scale", "sector-scale"])
def test_the_logged_model_loads_through_the_installed_package(models, buildings, tmp_path, family):
    """`mlflow models serve --env-manager local` loads the model in a process started
    elsewhere: its classes come from the installed package, not from files in the run."""
    model_uri = models[family].model_uri
    model_dir = mlflow.artifacts.download_artifacts(model_uri, dst_path=tmp_path)
    record = json.loads(json.dumps(buildings.iloc[0].to_dict(), default=float))
    script = textwrap.dedent(f"""
        import json
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
    assert done.stdout.strip().endswith(f'["{models[family].model.predict([record])[0]}"]')
