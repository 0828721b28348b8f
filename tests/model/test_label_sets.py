"""Issue 19, "Must show": the same records get the same label sets through every surface.

A promoted `sector-scale` champion (trained on the real sample, generated records where it
is absent) predicts the same records through the library (`Champion.predict`), the API over
a uvicorn socket (`/predict` and `/predict/csv`), `python -m core predict` (a CSV), the
Predict page and the Batch predict page: every surface shows the same `label_set` (the CSV
as `C|D` and `set_size`), the label is always in it, and some sets hold more than one label.
"""

import io

import httpx
import pandas as pd
import pytest

from core.data.schema import LABELS
from core.serving.champion import load_champion
from core.tracking import registry
from tests.support.api import api_server, serving, wait_until
from tests.support.cli import cli_env, run_cli
from tests.support.pages import assert_clean, open_page, use_home
from tests.support.sources import UNSEEN_SECTORS
from tests.support.training import fast_train, home_with_data

SECTORS = (
    "autres tertiaires non ERP",
    "J : Structures d'accueil pour personnes âgées ou personnes handicapées",
    "M : Magasins de vente, centres commerciaux",
    "W : Administrations, banques, bureaux",
    "U : Établissements de soins",
    "O : Hôtels et pensions de famille",
    UNSEEN_SECTORS[0],
)
CONSUMPTIONS = (45.0, 100.0, 160.0, 200.0, 260.0, 360.0, 560.0)


def records() -> list[dict]:
    """Sectors whose scale use is settled, mixed or unknown, across the scales' bounds; and
    one record the champion cannot take (no label, no set)."""
    found = [
        {"secteur_activite": sector, "conso_kwhep_m2_an": conso, "surface_utile": 850.0}
        for sector in SECTORS
        for conso in CONSUMPTIONS
    ]
    return [*found, {"secteur_activite": SECTORS[0], "surface_utile": -3.0}]


@pytest.fixture(scope="module")
def champion_home(tmp_path_factory, training_source):
    settings = home_with_data(tmp_path_factory.mktemp("label-sets"), source=training_source)
    registry.promote(settings, fast_train(settings, "sector-scale")["run_id"])
    return settings


@pytest.fixture(scope="module")
def expected(champion_home) -> list[list[str] | None]:
    """The library's sets: what every other surface must show."""
    answers = load_champion(champion_home).predict(records())
    sets = [answer["label_set"] for answer in answers]
    for answer in answers[:-1]:
        assert answer["label"] in answer["label_set"]
        assert answer["label_set"] == sorted(answer["label_set"], key=LABELS.index)
    assert sets[-1] is None and answers[-1]["error"]
    assert any(len(found) > 1 for found in sets[:-1]), "no record in doubt: a weak test"
    return sets


def frame_with(app, column: str) -> pd.DataFrame:
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def csv_sets(data: bytes) -> list[list[str] | None]:
    written = pd.read_csv(io.BytesIO(data), keep_default_na=False, dtype={"set_size": str})
    sets = [text.split("|") if text else None for text in written["label_set"]]
    sizes = [int(size) if size else None for size in written["set_size"]]
    assert sizes == [None if found is None else len(found) for found in sets]
    return sets


def test_the_api_answers_the_same_sets(champion_home, expected, tmp_path):
    with api_server(champion_home, tmp_path) as url:
        # Loading imports sklearn: seconds on a quiet machine, more on a busy CI runner.
        wait_until(lambda: serving(url), timeout_s=90, what="the champion served")
        answer = httpx.post(f"{url}/predict", json={"records": records()}, timeout=30)
        frame = pd.DataFrame(records())
        upload = httpx.post(
            f"{url}/predict/csv",
            files={"file": ("records.csv", frame.to_csv(index=False).encode(), "text/csv")},
            timeout=30,
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["set_coverage"] == 0.9 and body["set_note"] is None
    assert [p["label_set"] for p in body["predictions"]] == expected
    assert upload.status_code == 200, upload.text
    assert upload.headers["X-Set-Coverage"] == "0.9"
    assert csv_sets(upload.content) == expected


def test_the_cli_writes_the_same_sets(champion_home, expected, tmp_path):
    source, output = tmp_path / "records.csv", tmp_path / "predicted.csv"
    pd.DataFrame(records()).to_csv(source, index=False)
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(output), env=cli_env(champion_home)
    )
    assert code == 0, stderr
    assert payload["set_coverage"] == 0.9
    assert csv_sets(output.read_bytes()) == expected


def test_a_wider_coverage_gives_wider_sets(champion_home, expected, tmp_path):
    source, output = tmp_path / "records.csv", tmp_path / "predicted.csv"
    pd.DataFrame(records()).to_csv(source, index=False)
    env = {**cli_env(champion_home), "DPE_SET_COVERAGE": "0.97"}
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(output), env=env
    )
    assert code == 0, stderr
    assert payload["set_coverage"] == 0.97
    wider = csv_sets(output.read_bytes())
    assert all(
        set(narrow) <= set(wide) for narrow, wide in zip(expected[:-1], wider[:-1], strict=True)
    )
    assert sum(map(len, wider[:-1])) > sum(map(len, expected[:-1]))


def test_the_predict_page_shows_the_same_sets(champion_home, expected, monkeypatch):
    use_home(monkeypatch, champion_home.home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_home.tracking_uri)
    app = open_page("views/predict.py")
    assert_clean(app)
    doubtful = [row for row, found in enumerate(expected[:-1]) if len(found) > 1]
    for row in [0, *doubtful[:2]]:
        record = records()[row]
        sector = app.selectbox(key="predict_secteur_activite")
        if record["secteur_activite"] not in sector.options:  # typed in, as a browser would
            sector.options.append(record["secteur_activite"])
        sector.set_value(record["secteur_activite"])
        app.number_input(key="predict_conso_kwhep_m2_an").set_value(record["conso_kwhep_m2_an"])
        app.number_input(key="predict_surface_utile").set_value(record["surface_utile"])
        app.form_submit_button[0].click()
        app.run()
        assert_clean(app)
        shown = [m.value for m in app.markdown if m.value.startswith("**Label set:")]
        assert shown == [f"**Label set: {' · '.join(expected[row])}** (coverage 90%)"]
        # Which scale gives which label, and how much the sector used each.
        scales = frame_with(app, "Share of the sector's labels")
        assert set(scales["Label"]) >= set(expected[row]) - {None}
        assert scales["Share of the sector's labels"].sum() == pytest.approx(1.0)


def test_the_batch_page_shows_the_same_sets(champion_home, expected, monkeypatch):
    use_home(monkeypatch, champion_home.home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", champion_home.tracking_uri)
    app = open_page("views/batch_predict.py")
    data = pd.DataFrame(records()).to_csv(index=False).encode()
    app.file_uploader(key="batch_upload").set_value(("records.csv", data, "text/csv"))
    app.run()
    app.button(key="batch_run").click()
    app.run()
    assert_clean(app)
    results = frame_with(app, "label_set").sort_index()
    shown = [text.split("|") if text else None for text in results["label_set"].fillna("")]
    assert shown == expected
