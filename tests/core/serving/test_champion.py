"""core.serving.champion: loading a champion from the store (checksums first), validation, the fast
engines against sklearn, the quick start (core.serving.light_reader), the prediction sink."""

import json
import logging
import pickle
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.pipeline import Pipeline

from core.data.csv_source import read_csv
from core.data.schema import LABELS, RECORD_FIELDS, SNAKE_TO_OFFICIAL
from core.data.validation import clean
from core.errors import DpeError
from core.modeling.models import build_pipeline
from core.modeling.rules import RuleClassifier
from core.serving import engines
from core.serving.champion import Champion, load_champion, serving_champions
from core.serving.light_reader import LightForest, read_light
from core.storage import Store
from core.tracking.champion_store import MANIFEST_PATH, Manifest, read_manifest
from tests.support.champion import (
    as_floats,
    labelled,
    probabilities,
    publish_champion,
    sample_records,
    train_pipeline,
)
from tests.support.cli import ROOT, python_json
from tooling.synth import generate_records

SECTOR = "W : Administrations, banques, bureaux"


# --- loading ---------------------------------------------------------------------------------


def test_no_champion_says_how_to_make_one(settings):
    with pytest.raises(DpeError, match=r"no champion model in file://.*promote RUN_ID"):
        load_champion(settings)


def test_a_tampered_file_is_refused_before_it_is_read(settings, pipeline, tmp_path):
    manifest = publish_champion(settings, pipeline, 1)
    marker = tmp_path / "unpickled"

    class Bomb:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    Store(settings).write_bytes(f"models/dpe/champion/{manifest.model_file}", pickle.dumps(Bomb()))
    with pytest.raises(DpeError, match=r"v1/model\.skops does not match its sha256"):
        load_champion(settings)
    assert not marker.exists()


def test_a_missing_file_is_named(settings, pipeline):
    manifest = publish_champion(settings, pipeline, 1)
    Store(settings).remove(f"models/dpe/champion/{manifest.model_file}")
    with pytest.raises(DpeError, match=r"v1/model\.skops is missing"):
        load_champion(settings)


def test_the_forest_engine_is_used_and_gives_sklearns_probabilities(champion, pipeline, records):
    assert champion.engines == {"small": "numba-forest", "large": "numba-forest"}
    assert len(records) >= engines.PARALLEL_ROWS  # the batch is split over the CPUs
    expected = pipeline.predict_proba(pd.DataFrame(records))
    batch = champion.predict(records)
    assert np.array_equal(probabilities(batch), expected)
    alone = [champion.predict([record])[0] for record in records[:100]]
    assert np.array_equal(probabilities(alone), expected[:100])
    assert [r["label"] for r in batch] == list(pipeline.predict(pd.DataFrame(records)))


def test_the_forest_engine_walks_only_a_matrix_of_its_width(pipeline, records):
    """Its kernel reads the matrix without bounds checks: a narrower one is refused first."""
    engine = engines.ForestEngine(pipeline.named_steps["classify"])
    matrix = pipeline.named_steps["encode"].transform(records[:5])
    assert engine(matrix).shape == (5, len(pipeline.classes_))
    with pytest.raises(ValueError, match="features"):
        engine(matrix[:, :-1])


def test_an_engine_that_disagrees_is_dropped(settings, pipeline, monkeypatch, caplog):
    monkeypatch.setattr(
        engines.ForestEngine,
        "__call__",
        lambda self, matrix: np.full((len(matrix), self.n_classes), 1 / 7),
    )
    publish_champion(settings, pipeline, 1)
    with caplog.at_level(logging.WARNING, logger="core.serving.champion"):
        champion = load_champion(settings)
    assert champion.engines == {"small": "sklearn", "large": "sklearn"}
    assert "numba-forest engine differs from sklearn" in caplog.text
    record = sample_records()[0]
    expected = pipeline.predict_proba(pd.DataFrame([record]))[0]
    assert np.array_equal(as_floats(champion.predict([record])[0]["probabilities"]), expected)


def test_a_pipeline_without_the_encoder_runs_in_sklearn(settings):
    X, y = labelled(pd.DataFrame(sample_records()).assign(etiquette_dpe="C"))
    rules = Pipeline([("classify", RuleClassifier())]).fit(X, y)
    manifest = Manifest(model_version="1", model_file="v1/model.pkl", files={})
    champion = Champion(manifest, rules)
    record = {"secteur_activite": SECTOR, "conso_kwhep_m2_an": 80.0}
    assert champion.predict([record])[0]["label"] == "B"  # bureaux: B is 51..110
    assert champion.predict([{}])[0]["label"] == "C"  # no consumption: the most frequent


@pytest.mark.real_data
def test_identical_to_sklearn_on_every_labelled_record_of_the_sample(settings, sample_csv):
    X, y = labelled(read_csv(sample_csv))
    pipeline = train_pipeline(read_csv(sample_csv), n_estimators=300)
    publish_champion(settings, pipeline, 1)
    champion = load_champion(settings)
    assert champion.engines == {"small": "numba-forest", "large": "numba-forest"}
    records = [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in X.astype(object).to_dict("records")
    ]
    expected = pipeline.predict_proba(X)
    labels = list(pipeline.predict(X))
    for size in (1, len(records)):  # one at a time, all at once (split over the CPUs)
        results = [
            r for i in range(0, len(records), size) for r in champion.predict(records[i : i + size])
        ]
        assert [r["label"] for r in results] == labels
        assert np.array_equal(probabilities(results), expected)
    assert len(records) >= 1600


# --- validation ------------------------------------------------------------------------------


def test_every_field_is_optional_and_official_names_are_accepted(champion, records):
    record = records[0]
    official = {SNAKE_TO_OFFICIAL[name]: value for name, value in record.items()}
    by_snake, by_official, empty = champion.predict([record, official, {}])
    assert by_official == by_snake
    assert empty["label"] in LABELS and empty["error"] is None


def test_null_blank_and_missing_categories_are_the_same(champion):
    base = {"secteur_activite": SECTOR, "surface_utile": 400.0, "conso_kwhep_m2_an": 150.0}
    variants = [
        {**base, "periode_construction": None},
        {**base, "periode_construction": "  "},
        {**base, "periode_construction": float("nan")},
        base,
    ]
    results = champion.predict(variants)
    assert all(result == results[0] for result in results)
    assert results[0]["label"] is not None


def test_unacceptable_records_get_an_error_at_their_place(champion, records):
    bad = [
        {"surface_utile": 0},
        {"conso_kwhep_m2_an": "beaucoup"},
        {"annee_construction": 1990.5},
        {"Catégorie_ERP": 5},
        {"surface_utile": True},
        {"surfce_utile": 120},
    ]
    results = champion.predict([records[0], *bad, records[1]])
    assert [r["label"] is None for r in results] == [False] + [True] * len(bad) + [False]
    errors = [r["error"] for r in results[1:-1]]
    assert errors == [
        "Surface_utile=0 must be > 0",
        "Conso_kWhep/m²/an='beaucoup' is not a number",
        "Année_construction=1990.5 is not an integer",
        "Catégorie_ERP=5 is not text",
        "Surface_utile=true is not a number",
        "no field the model knows: 'surfce_utile' (did you mean surface_utile?)",
    ]
    assert all(r["probabilities"] is None for r in results[1:-1])
    # Each problem as data: its field (None: the record as a whole) and code.
    assert [[(p["field"], p["code"]) for p in r["errors"]] for r in results] == [
        [],
        [("surface_utile", "below_minimum")],
        [("conso_kwhep_m2_an", "not_a_number")],
        [("annee_construction", "not_an_integer")],
        [("categorie_erp", "not_text")],
        [("surface_utile", "not_a_number")],
        [(None, "no_known_field")],
        [],
    ]
    assert [r["errors"][0]["message"] for r in results[1:-1]] == errors


def test_a_category_never_seen_is_predicted_with_a_warning(champion, records):
    """Issue 12: an unseen value is the encoder's unknown one; the sector's code (`OA`)
    still gives its scale family."""
    record = records[0] | {"secteur_activite": "OA : Secteur apparu en 2026"}
    (result,) = champion.predict([record])
    assert result["label"] in LABELS and result["error"] is None
    assert result["warnings"] == [
        "Secteur_activité='OA : Secteur apparu en 2026' is a category the model never saw "
        "in training: predicted as an unknown one"
    ]
    assert champion.predict([records[0]])[0]["warnings"] == []


def test_a_misspelt_category_is_warned_of_with_the_closest_known_ones(champion, records):
    """Issue 23.15: a typo in a category said "predicted as an unknown one", no suggestion."""
    known = sorted(champion._categories["secteur_activite"])
    office = next(value for value in known if value.startswith("W : "))
    typo = office.replace("bureaux", "bureax").upper()  # a typo, and the case changed
    (result,) = champion.predict([records[0] | {"secteur_activite": typo}])
    assert result["label"] in LABELS
    [warning] = result["warnings"]
    assert warning.endswith(f"predicted as an unknown one (did you mean '{office}'?)")


def test_unknown_keys_are_warned_of_with_the_closest_field_names(champion, records):
    record = records[0] | {"surfce_utile": 12, "Etiquete_DPE": "C", "comment": "x"}
    (result,) = champion.predict([record])
    assert result["label"] in LABELS
    assert result["probabilities"] == champion.predict([records[0]])[0]["probabilities"]
    assert result["warnings"] == [
        "unknown field(s) ignored: 'Etiquete_DPE' (did you mean Etiquette_DPE or Etiquette_GES?), "
        "'comment', "
        "'surfce_utile' (did you mean surface_utile?)"
    ]


def test_booleans_are_not_numbers(champion):
    results = champion.predict([{"conso_kwhep_m2_an": False}, {"annee_construction": 1990.0}])
    assert results[0]["error"] == "Conso_kWhep/m²/an=false is not a number"
    assert results[1]["error"] is None  # a float that is an integer is one


def test_number_errors_read_as_ingest_gives_them(champion):
    records = [
        {"surface_utile": -3, "conso_kwhep_m2_an": 2e6},
        {"version_dpe": 7, "annee_construction": 3000.0},
        {"surface_shon": "12,5", "emission_ges_kgco2_m2_an": -0.5},
    ]
    results = champion.predict(records)
    theirs = clean(pd.DataFrame([{k: str(v) for k, v in r.items()} for r in records]))
    assert [r["error"] for r in results] == theirs["reject_reason"].tolist()
    codes = ["|".join(p["code"] for p in r["errors"]) for r in results]
    assert (
        codes
        == theirs["reject_code"].tolist()
        == [
            "below_minimum|above_maximum",
            "above_maximum|above_maximum",
            "below_minimum",
        ]
    )


def test_manifest_bounds_tighter_than_the_schema_apply(settings, pipeline):
    manifest = publish_champion(settings, pipeline, 1)
    for entry in manifest.input_schema:
        if entry["name"] == "surface_utile":
            entry["max"] = 50_000
    champion = Champion(manifest, pipeline)
    result = champion.predict([{"surface_utile": 60_000}])[0]
    assert result["error"] == "Surface_utile=60000 must be <= 50000"
    assert result["errors"] == [
        {"field": "surface_utile", "code": "above_maximum", "message": result["error"]}
    ]


# --- the prediction sink ---------------------------------------------------------------------


def test_the_sink_gets_inputs_and_results_off_the_caller_thread(settings, pipeline, records):
    publish_champion(settings, pipeline, 1)
    calls, done = [], threading.Event()

    def sink(frame, results, model_version, source, client, request_id):
        thread = threading.current_thread().name
        calls.append((frame, results, model_version, source, client, request_id, thread))
        done.set()

    champion = load_champion(settings, sink=sink)
    records = [records[0], {"surface_utile": 0}]
    results = champion.predict(records, source="api", client="host:10.1.2.3", request_id="r-9")
    assert done.wait(5)
    frame, logged, version, source, client, request_id, thread = calls[0]
    assert logged == results and version == "1" and source == "api"
    assert client == "host:10.1.2.3" and request_id == "r-9"
    assert thread != threading.current_thread().name
    assert list(frame.columns) == list(RECORD_FIELDS) and len(frame) == 2
    assert frame.loc[1, "surface_utile"] == 0.0


def test_a_failing_sink_does_not_break_predicting(settings, pipeline, records):
    publish_champion(settings, pipeline, 1)

    def sink(*args, **who):
        raise RuntimeError("disk full")

    champion = load_champion(settings, sink=sink)
    assert champion.predict([records[0]])[0]["label"] in LABELS


def test_manifest_is_what_the_store_holds(settings, champion):
    stored = json.loads(Store(settings).read_bytes(MANIFEST_PATH))
    assert champion.manifest.to_dict() == stored and champion.model_version == "1"


def test_loading_never_imports_mlflow(settings, champion):
    code = (
        "import sys; from core.config import Settings; "
        "from core.serving.champion import load_champion; "
        f"champion = load_champion(Settings(_env_file=None, home={str(settings.home)!r})); "
        "champion.predict([{}]); print(sorted(m for m in sys.modules if m.startswith('mlflow')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


def test_a_quick_load_reads_a_forest_without_sklearn_and_answers_the_same(
    settings, champion, pipeline, records
):
    """The API's cold start: the app and a quick champion import neither sklearn nor pandas
    (~1.2 s), and the numba engine gives sklearn's probabilities all the same."""
    code = (
        "import json, sys; import api.main; from core.config import Settings; "
        "from core.serving.champion import serving_champions; "
        "from core.tracking.champion_store import read_manifest; "
        "from core.storage import Store; "
        f"store = Store(Settings(_env_file=None, home={str(settings.home)!r})); "
        "champion = next(serving_champions(read_manifest(store), store)); "
        "results = champion.predict(json.load(sys.stdin)); "
        "print(json.dumps({'light': champion.light, 'results': results, "
        "'heavy': sorted({'sklearn', 'pandas', 'scipy.stats'} & set(sys.modules))}))"
    )
    answer = python_json(code, records[:300])
    assert answer["light"] and answer["heavy"] == []
    assert np.array_equal(
        probabilities(answer["results"]), probabilities(champion.predict(records[:300]))
    )
    assert [r["label"] for r in answer["results"]] == list(
        pipeline.predict(pd.DataFrame(records[:300]))
    )


def test_a_server_serves_a_forest_quick_then_checked_from_one_download(
    settings, champion, records, monkeypatch
):
    store = Store(settings)
    downloads = []
    read_bytes = store.read_bytes
    monkeypatch.setattr(
        store, "read_bytes", lambda path: downloads.append(path) or read_bytes(path)
    )
    quick, checked = serving_champions(read_manifest(store), store)
    assert quick.light and not checked.light
    assert checked.engines == {"small": "numba-forest", "large": "numba-forest"}
    assert len(downloads) == len(set(downloads))  # each file read once
    assert quick.predict(records[:50]) == checked.predict(records[:50])


def test_a_quick_champion_gives_probabilities_of_a_frame_as_the_checked_one(
    settings, champion, records
):
    # Drift asks the served champion for the probabilities of a frame: the quick one too.
    quick, checked = serving_champions(read_manifest(Store(settings)), Store(settings))
    frame = pd.DataFrame(records[:100])
    assert quick.light
    assert np.array_equal(quick.predict_proba(frame), checked.predict_proba(frame))
    assert np.array_equal(quick.predict_proba(records[:5]), checked.predict_proba(frame[:5]))


def test_a_quick_start_of_another_model_is_plain_sklearn_then_checked(settings):
    X, y = labelled(generate_records(400, seed=5))
    logreg = build_pipeline("logreg", "with-consumption").fit(X, y)
    publish_champion(settings, logreg, 1)
    store = Store(settings)
    quick, checked = serving_champions(read_manifest(store), store)
    assert quick is checked and not quick.light
    assert quick.engines == {"small": "sklearn", "large": "sklearn"}
    record = sample_records()[0]
    expected = logreg.predict_proba(pd.DataFrame([record]))[0]
    assert np.array_equal(as_floats(quick.predict([record])[0]["probabilities"]), expected)


def test_the_light_read_takes_a_forest_skops_file_and_nothing_else(tmp_path, pipeline):
    marker = tmp_path / "unpickled"

    class Bomb:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    assert read_light(pickle.dumps(Bomb())) is None  # a pickle is never unpickled here
    assert not marker.exists()
    X, y = labelled(generate_records(400, seed=5))
    logreg = build_pipeline("logreg", "with-consumption").fit(X, y)
    assert read_light(skops.io.dumps(logreg)) is None  # the full load reads it
    light = read_light(skops.io.dumps(pipeline))
    assert light is not None and isinstance(light.steps[1][1], LightForest)


def test_a_scale_champion_answers_its_own_monotone_label(settings):
    """Serving turns probabilities into labels as the model does: the scale model's median
    class, which never gets better when only the consumption rises (its argmax may)."""
    X, y = labelled(generate_records(2000, seed=5))
    pipeline = build_pipeline("scale", "with-consumption").fit(X, y)
    publish_champion(settings, pipeline, 1)
    champion = load_champion(settings)
    buildings = X.iloc[:40].astype(object).to_dict("records")
    for building in buildings:
        grid = [{**building, "conso_kwhep_m2_an": float(c)} for c in range(0, 1500, 10)]
        served = [result["label"] for result in champion.predict(grid)]
        assert served == list(pipeline.predict(grid))
        assert served == sorted(served)  # never a better label as the consumption rises
