"""Issue 12, "Must show": zero records refused for a sector the model never saw.

The ERP types the ADEME sample lacks, and a free-text sector, are sent to a promoted champion
through every surface a user has: the API over a uvicorn socket, `python -m core predict` (a
CSV), and the Predict page. Each record gets a label and a warning naming its sector, none an
error. Two champions: the default with the consumption (`sector-scale`, whose label for an
unseen sector is the consumption's on the scale the regulation assigns it) and the default
building-only one (`hgb`, through `RecordEncoder`, where an unseen value encodes as unknown).
"""

import httpx
import pandas as pd
import pytest

from core.data.schema import LABELS
from core.modeling.scales import family_for_sector, label_for
from core.storage import Store
from core.tracking import registry
from core.tracking.champion_store import read_manifest
from tests.support.api import api_server, serving, wait_until
from tests.support.cli import cli_env, run_cli
from tests.support.pages import assert_clean, open_page, shown, texts, use_home
from tests.support.sources import UNSEEN_SECTORS
from tests.support.training import fast_train, home_with_data

CONSUMPTIONS = (95.0, 180.0, 320.0)
CHAMPIONS = {"sector-scale": "with-consumption", "hgb": "building-only"}


def unseen_records() -> list[dict]:
    """Each unseen sector at a few consumptions, with what a manager knows."""
    return [
        {
            "secteur_activite": sector,
            "conso_kwhep_m2_an": conso,
            "surface_utile": 640.0,
            "periode_construction": "1975-1977",
            "type_energie_principale_chauffage": "Gaz naturel",
        }
        for sector in UNSEEN_SECTORS
        for conso in CONSUMPTIONS
    ]


@pytest.fixture(scope="module", params=list(CHAMPIONS))
def champion_home(request, tmp_path_factory, training_source):
    """A DPE_HOME whose promoted champion is this family, trained on the real sample
    (generated records where it is absent)."""
    family = request.param
    settings = home_with_data(tmp_path_factory.mktemp(f"unseen-{family}"), source=training_source)
    trained = fast_train(settings, family, CHAMPIONS[family])
    registry.promote(settings, trained["run_id"])
    return family, settings


def assert_predicted_with_warnings(family: str, records: list[dict], answers: list[dict]):
    """Every record labelled A–G, no error, a warning naming its sector; the sector-scale
    champion's label is the consumption's on the regulation's scale for the sector."""
    assert len(answers) == len(records)
    for record, answer in zip(records, answers, strict=True):
        sector = record["secteur_activite"]
        assert answer["error"] is None, (sector, answer["error"])
        assert answer["label"] in LABELS, sector
        assert any(sector in w and "never saw" in w for w in answer["warnings"]), answer
        if family == "sector-scale":
            expected = label_for(record["conso_kwhep_m2_an"], family_for_sector(sector))
            assert answer["label"] == expected, (sector, record["conso_kwhep_m2_an"])


def test_the_manifest_says_these_sectors_were_never_seen(champion_home):
    _, settings = champion_home
    schema = {field["name"]: field for field in read_manifest(Store(settings)).input_schema}
    seen = schema["secteur_activite"]["categories"]
    assert seen and not set(UNSEEN_SECTORS) & set(seen)


def test_the_api_predicts_every_unseen_sector_with_a_warning(champion_home, tmp_path):
    family, settings = champion_home
    records = unseen_records()
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: serving(url), what="the champion served")
        response = httpx.post(f"{url}/predict", json={"records": records}, timeout=30)
    assert response.status_code == 200, response.text
    assert_predicted_with_warnings(family, records, response.json()["predictions"])


def test_the_cli_predicts_every_unseen_sector_with_a_warning(champion_home, tmp_path):
    family, settings = champion_home
    records = unseen_records()
    source, output = tmp_path / "unseen.csv", tmp_path / "predicted.csv"
    pd.DataFrame(records).to_csv(source, index=False)
    code, payload, stderr = run_cli(
        "predict", "--input", str(source), "--output", str(output), env=cli_env(settings)
    )
    assert code == 0, stderr
    assert payload["rows"] == payload["predicted"] == len(records)
    assert payload["rejected"] == 0
    written = pd.read_csv(output, keep_default_na=False)
    answers = [
        {"label": row.predicted_label, "error": row.error or None, "warnings": [row.warning]}
        for row in written.itertuples()
    ]
    assert_predicted_with_warnings(family, records, answers)


def test_the_predict_page_predicts_every_unseen_sector_with_a_notice(champion_home, monkeypatch):
    family, settings = champion_home
    use_home(monkeypatch, settings.home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.tracking_uri)
    app = open_page("views/predict.py")
    assert_clean(app)
    numbers = {widget.key for widget in app.number_input}
    # A building-only champion does not take the consumption: the page asks for it apart.
    conso_key = next(
        k for k in ("predict_conso_kwhep_m2_an", "predict_scale_conso") if k in numbers
    )
    for record in unseen_records()[:: len(CONSUMPTIONS)]:
        sector = record["secteur_activite"]
        widget = app.selectbox(key="predict_secteur_activite")
        # What the browser sends for a typed-in value (accept_new_options): AppTest only
        # sets values from the options, so the typed one is added to them first.
        if sector not in widget.options:
            widget.options.append(sector)
        widget.set_value(sector)
        app.number_input(key=conso_key).set_value(record["conso_kwhep_m2_an"])
        app.number_input(key="predict_surface_utile").set_value(record["surface_utile"])
        app.form_submit_button[0].click()
        app.run()
        assert_clean(app)
        label = app.subheader[0].value.removeprefix("Predicted label: ")
        assert label in LABELS, sector
        if family == "sector-scale":
            assert label == label_for(record["conso_kwhep_m2_an"], family_for_sector(sector))
        notice = shown(texts(app.warning))
        assert "Predicted, but" in notice and sector in notice and "never saw" in notice
