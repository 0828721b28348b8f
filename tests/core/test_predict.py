"""core.predict: loading a champion from the store (checksums first), validation, the fast
engines against sklearn, single vs batch vs CSV vs CLI, the prediction sink."""

import json
import logging
import pickle
import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from core import engines, predict
from core.errors import DpeError
from core.ingest import clean, read_csv
from core.models import build_pipeline
from core.predict import (
    MANIFEST_PATH,
    PREDICTION_COLUMNS,
    Champion,
    load_champion,
    predict_csv,
    predict_frame,
    read_manifest,
    serving_champions,
    to_csv_bytes,
)
from core.rules import RuleClassifier
from core.schema import LABELS, RECORD_FIELDS, SNAKE_TO_OFFICIAL
from core.storage import Store
from core.synth import generate_records
from tests.champion import as_floats, labelled, publish_champion, sample_records, train_pipeline
from tests.conftest import ROOT, cli_env, run_cli

SECTOR = "W : Administrations, banques, bureaux"


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return train_pipeline(n_estimators=40)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return sample_records(seed=3)


@pytest.fixture
def champion(settings, pipeline) -> Champion:
    publish_champion(settings, pipeline, 1)
    return load_champion(settings)


def probabilities(results: list[dict]) -> np.ndarray:
    return np.array([as_floats(result["probabilities"]) for result in results])


# --- loading ---------------------------------------------------------------------------------


def test_no_champion_says_how_to_make_one(settings):
    with pytest.raises(DpeError, match=r"no champion model in file://.*promote RUN_ID"):
        load_champion(settings)


def test_a_tampered_file_is_refused_before_unpickling(settings, pipeline, tmp_path):
    manifest = publish_champion(settings, pipeline, 1)
    marker = tmp_path / "unpickled"

    class Bomb:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    Store(settings).write_bytes(
        f"models/dpe/champion/{manifest['model_file']}", pickle.dumps(Bomb())
    )
    with pytest.raises(DpeError, match=r"v1/model\.pkl does not match its sha256"):
        load_champion(settings)
    assert not marker.exists()


def test_a_missing_file_is_named(settings, pipeline):
    manifest = publish_champion(settings, pipeline, 1)
    Store(settings).remove(f"models/dpe/champion/{manifest['model_file']}")
    with pytest.raises(DpeError, match=r"v1/model\.pkl is missing"):
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


def test_an_engine_that_disagrees_is_dropped(settings, pipeline, monkeypatch, caplog):
    monkeypatch.setattr(
        engines.ForestEngine,
        "__call__",
        lambda self, matrix: np.full((len(matrix), self.n_classes), 1 / 7),
    )
    publish_champion(settings, pipeline, 1)
    with caplog.at_level(logging.WARNING, logger="core.predict"):
        champion = load_champion(settings)
    assert champion.engines == {"small": "sklearn", "large": "sklearn"}
    assert "numba-forest engine differs from sklearn" in caplog.text
    record = sample_records()[0]
    expected = pipeline.predict_proba(pd.DataFrame([record]))[0]
    assert np.array_equal(as_floats(champion.predict([record])[0]["probabilities"]), expected)


def test_a_pipeline_without_the_encoder_runs_in_sklearn(settings):
    X, y = labelled(pd.DataFrame(sample_records()).assign(etiquette_dpe="C"))
    rules = Pipeline([("classify", RuleClassifier())]).fit(X, y)
    manifest = {"model_version": "1", "model_file": "v1/model.pkl", "files": {}}
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
        {"secteur_activite": "Z : Zoo"},
        {"surface_utile": 0},
        {"conso_kwhep_m2_an": "beaucoup"},
        {"annee_construction": 1990.5},
        {"Catégorie_ERP": 5},
    ]
    results = champion.predict([records[0], *bad, records[1]])
    assert [r["label"] is None for r in results] == [False] + [True] * len(bad) + [False]
    errors = [r["error"] for r in results[1:-1]]
    assert errors == [
        "Secteur_activité='Z : Zoo' is not a category the model knows (see its input_schema)",
        "Surface_utile=0 must be > 0",
        "Conso_kWhep/m²/an='beaucoup' is not a number",
        "Année_construction=1990.5 is not an integer",
        "Catégorie_ERP=5 is not text",
    ]
    assert all(r["probabilities"] is None for r in results[1:-1])


def test_number_errors_read_as_ingest_gives_them(champion):
    records = [
        {"surface_utile": -3, "conso_kwhep_m2_an": 2e6},
        {"version_dpe": 7, "annee_construction": 3000.0},
        {"surface_shon": "12,5", "emission_ges_kgco2_m2_an": -0.5},
    ]
    ours = [r["error"] for r in champion.predict(records)]
    theirs = clean(pd.DataFrame([{k: str(v) for k, v in r.items()} for r in records]))
    assert ours == theirs["reject_reason"].tolist()


def test_manifest_bounds_tighter_than_the_schema_apply(settings, pipeline):
    manifest = publish_champion(settings, pipeline, 1)
    for entry in manifest["input_schema"]:
        if entry["name"] == "surface_utile":
            entry["max"] = 50_000
    champion = Champion(manifest, pipeline)
    result = champion.predict([{"surface_utile": 60_000}])[0]
    assert result["error"] == "Surface_utile=60000 must be <= 50000"


# --- batches, CSV and the command line -------------------------------------------------------


def records_csv(records: list[dict], sep: str = ",", official: bool = False) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=list(RECORD_FIELDS))
    if official:
        frame = frame.rename(columns=SNAKE_TO_OFFICIAL)
    return frame


def test_predict_frame_keeps_every_row_and_matches_predict(champion, records):
    frame = records_csv(records[:50] + [{"secteur_activite": "Z : Zoo"}, {}])
    frame["extra"] = "kept"
    predicted = predict_frame(champion, frame)
    assert list(predicted.columns) == [*frame.columns, *PREDICTION_COLUMNS]
    assert len(predicted) == len(frame) and (predicted["extra"] == "kept").all()
    results = champion.predict(frame.to_dict("records"))
    for row, result in zip(predicted.itertuples(index=False), results, strict=True):
        assert (None if pd.isna(row.predicted_label) else row.predicted_label) == result["label"]
        assert (row.error or None) == result["error"]
        if result["label"]:
            got = np.array([getattr(row, f"proba_{label}") for label in LABELS])
            assert np.abs(got - as_floats(result["probabilities"])).max() <= predict.TOLERANCE


def test_csv_round_trip_semicolon_cp1252_decimal_comma(champion, records, tmp_path):
    frame = records_csv(records[:30] + [{"conso_kwhep_m2_an": -1}], official=True)
    path = tmp_path / "input.csv"
    text = frame.to_csv(sep=";", index=False, decimal=",")
    path.write_bytes(text.encode("cp1252"))
    predicted = predict_frame(champion, read_csv(path))
    data = to_csv_bytes(predicted)
    back = pd.read_csv(pd.io.common.BytesIO(data), dtype=str, keep_default_na=False)
    assert back.columns[0] == frame.columns[0] and "predicted_label" in back
    assert back["error"].iloc[-1] == "Conso_kWhep/m²/an=-1 must be >= 0"
    assert (back["predicted_label"].iloc[:-1] != "").all()
    expected = probabilities(champion.predict(records[:30]))
    got = back[[f"proba_{label}" for label in LABELS]].iloc[:-1].astype(float).to_numpy()
    assert np.array_equal(got, expected)  # floats written in full


def test_predict_csv_writes_what_predict_frame_gives(champion, records, tmp_path):
    frame = records_csv(records[:40] + [{"surface_utile": 0}], official=True)
    frame.insert(0, "note, with a comma", "kept as it came")
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    counts = predict_csv(champion, source, tmp_path / "out.csv")
    assert counts == {"rows": 41, "predicted": 40, "rejected": 1}
    expected = to_csv_bytes(predict_frame(champion, read_csv(source)))
    assert (tmp_path / "out.csv").read_bytes() == expected
    # An output predicted again: its prediction columns are replaced, not repeated.
    predict_csv(champion, tmp_path / "out.csv", tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == expected


def test_predict_csv_of_columns_the_model_does_not_read(champion, tmp_path):
    predict_csv(champion, b"foo;bar\n1;2\n3;4\n", tmp_path / "out.csv")
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(written.columns) == ["foo", "bar", *PREDICTION_COLUMNS]
    assert written["foo"].tolist() == ["1", "3"] and (written["predicted_label"] != "").all()


def test_cli_predict(settings, champion, records, tmp_path):
    source = tmp_path / "in.csv"
    records_csv(records[:40] + [{"surface_utile": 0}], official=True).to_csv(source, index=False)
    output = tmp_path / "out" / "predicted.csv"
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(output), env=cli_env(settings)
    )
    assert code == 0, stderr
    assert payload["rows"] == 41 and payload["predicted"] == 40 and payload["rejected"] == 1
    assert payload["model_version"] == "1"
    written = pd.read_csv(output, dtype=str, keep_default_na=False)
    expected = probabilities(champion.predict(records[:40]))
    got = written[[f"proba_{label}" for label in LABELS]].iloc[:40].astype(float).to_numpy()
    assert np.array_equal(got, expected)


def test_cli_without_champion_is_a_clear_error(settings, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("surface_utile\n100\n")
    code, payload, stderr = run_cli(
        "predict",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.csv"),
        env=cli_env(settings),
    )
    assert code == 2 and payload is None
    assert "no champion model in" in stderr and "Traceback" not in stderr


# --- the prediction sink ---------------------------------------------------------------------


def test_the_sink_gets_inputs_and_results_off_the_caller_thread(settings, pipeline, records):
    publish_champion(settings, pipeline, 1)
    calls, done = [], threading.Event()

    def sink(frame, results, model_version, source):
        calls.append((frame, results, model_version, source, threading.current_thread().name))
        done.set()

    champion = load_champion(settings, sink=sink)
    results = champion.predict([records[0], {"surface_utile": 0}], source="api")
    assert done.wait(5)
    frame, logged, version, source, thread = calls[0]
    assert logged == results and version == "1" and source == "api"
    assert thread != threading.current_thread().name
    assert list(frame.columns) == list(RECORD_FIELDS) and len(frame) == 2
    assert frame.loc[1, "surface_utile"] == 0.0


def test_a_failing_sink_does_not_break_predicting(settings, pipeline, records):
    publish_champion(settings, pipeline, 1)

    def sink(*args):
        raise RuntimeError("disk full")

    champion = load_champion(settings, sink=sink)
    assert champion.predict([records[0]])[0]["label"] in LABELS


def test_manifest_is_what_the_store_holds(settings, champion):
    stored = json.loads(Store(settings).read_bytes(MANIFEST_PATH))
    assert champion.manifest == stored and champion.model_version == "1"


def test_loading_never_imports_mlflow(settings, champion):
    code = (
        "import sys; from core.config import Settings; from core.predict import load_champion; "
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
        "from core.predict import read_manifest, serving_champions; "
        "from core.storage import Store; "
        f"store = Store(Settings(_env_file=None, home={str(settings.home)!r})); "
        "champion = next(serving_champions(read_manifest(store), store)); "
        "results = champion.predict(json.load(sys.stdin)); "
        "print(json.dumps({'light': champion.light, 'results': results, "
        "'heavy': sorted({'sklearn', 'pandas', 'scipy.stats'} & set(sys.modules))}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(records[:300]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout)
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


def test_the_light_read_unpickles_nothing_but_what_it_knows(tmp_path):
    marker = tmp_path / "unpickled"

    class Bomb:  # unpickling this would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    assert predict._read_light(pickle.dumps(Bomb())) is None
    assert not marker.exists()


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
