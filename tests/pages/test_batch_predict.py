"""Batch predict: empty state; upload, preview, rejection report, distribution, download."""

import io

import pandas as pd

from core.monitoring import prediction_store
from core.storage import Store
from core.tracking.champion_store import read_manifest
from tests.support.pages import assert_clean, open_page, shown, texts
from tooling.synth import generate_records
from ui.template import template_csv

PAGE = "views/batch_predict.py"


def batch_with_bad_rows() -> bytes:
    """40 generated records, `;`-separated cp1252 as Excel writes them, three of them bad."""
    frame = generate_records(1000, seed=11).head(40).astype(object)
    frame.loc[3, "Surface_utile"] = "-3"
    frame.loc[7, "Surface_utile"] = "-12"
    frame.loc[12, "Année_construction"] = "vers 1900"
    frame.loc[20, "Secteur_activité"] = "Z : Vaisseaux spatiaux"
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, sep=";")
    return buffer.getvalue().encode("cp1252", errors="replace")


def test_empty_install_says_there_is_no_champion(empty_env):
    app = open_page(PAGE)
    assert_clean(app)
    assert "No model has been promoted" in texts(app.info)
    assert not app.get("file_uploader")


def frame_with(app, column: str) -> pd.DataFrame:
    """The page's table that has this column."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def upload(app, name: str, data: bytes):
    app.file_uploader(key="batch_upload").set_value((name, data, "text/csv"))
    return app.run()


def test_bad_rows_get_the_right_rejection_report(data_env):
    app = open_page(PAGE)
    upload(app, "batch.csv", batch_with_bad_rows())
    assert_clean(app)
    assert "40 rows" in texts(app.caption)
    assert len(app.dataframe[0].value) == 20  # the preview
    app.button(key="batch_run").click()
    app.run()
    assert_clean(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Rows"] == "40"
    # Grouped by code, each with its meaning: the two negative surfaces, the year in words.
    # A sector the model never saw is predicted, with a warning (issue 12), not rejected.
    reasons = frame_with(app, "Code")
    assert dict(zip(reasons["Code"], reasons["Rows"], strict=True)) == {
        "below_minimum": 2,
        "not_a_number": 1,
    }
    assert reasons["Meaning"].str.len().gt(0).all()
    assert reasons.set_index("Code").loc["not_a_number", "Example"] == (
        "Année_construction='vers 1900' is not a number"
    )
    rejected = frame_with(app, "error_code")
    assert sorted(rejected["row"]) == [4, 8, 13]  # spreadsheet rows (header is 0)
    assert metrics["Rejected"] == "3" and metrics["Predicted"] == "37"
    assert metrics["Predicted with a warning"] == "1"
    results = frame_with(app, "predicted_label")
    assert "Z : Vaisseaux spatiaux" in results.loc[21, "warning"]
    buttons = {button.proto.label for button in app.get("download_button")}
    assert "Download the results (CSV)" in buttons


def test_download_holds_every_row_with_its_prediction(data_env, data_home):
    _, built = data_home
    from core.config import get_settings
    from core.data.csv_source import read_csv
    from core.serving import batch
    from core.serving.champion import load_champion

    data = batch_with_bad_rows()
    champion = load_champion(get_settings())
    expected = batch.predict_frame(champion, read_csv(data))
    app = open_page(PAGE)
    upload(app, "batch.csv", data)
    app.button(key="batch_run").click()
    app.run()
    result = app.session_state["batch_result"]["predicted"]
    output = pd.read_csv(io.BytesIO(batch.to_csv_bytes(result)), dtype=str)
    assert len(output) == 40
    assert list(output.columns[-11:]) == [
        "predicted_label",
        *[f"proba_{x}" for x in "ABCDEFG"],
        "error",
        "error_code",
        "warning",
    ]
    assert output["error_code"].dropna().tolist() == [
        "below_minimum",
        "below_minimum",
        "not_a_number",
    ]
    assert result["predicted_label"].tolist() == expected["predicted_label"].tolist()


def test_file_above_the_upload_limit_gets_a_clear_message(data_env, monkeypatch):
    from core.config import get_settings

    monkeypatch.setenv("DPE_MAX_UPLOAD_MB", "1")
    get_settings.cache_clear()
    app = open_page(PAGE)
    upload(app, "huge.csv", b"N\xc2\xb0DPE\n" + b"1\n" * 600_000)
    assert_clean(app)
    assert "above the 1 MB upload limit" in texts(app.warning)
    assert not app.button


def test_a_file_with_none_of_the_fields_is_refused_and_nothing_is_logged(own_data_env, monkeypatch):
    """Issue 15.2: `name, price, colour` is not a file of buildings: refused with the list of
    expected fields, Predict disabled, no row predicted or logged."""
    from core.config import get_settings

    monkeypatch.setenv("DPE_LOG_PREDICTIONS", "true")
    get_settings.cache_clear()
    app = open_page(PAGE)
    upload(app, "shop.csv", b"name,price,colour\nchair,10,red\ntable,40,blue\n")
    assert not app.exception
    refusal = shown(texts(app.error))
    assert "shop.csv cannot be predicted" in refusal and "expected some of" in refusal
    assert "Secteur_activité" in refusal and "Surface_utile" in refusal
    assert app.button(key="batch_run").disabled  # AppTest, as a browser, cannot click it
    assert "batch_result" not in app.session_state
    assert "Every row is valid" not in texts(app.success)
    assert prediction_store.read_predictions(get_settings()).empty


def test_a_file_with_some_fields_says_which_are_missing(data_env):
    app = open_page(PAGE)
    data = 'Secteur_activité,Surface_utile\n"W : Administrations, banques, bureaux",850\n'
    upload(app, "few.csv", data.encode())
    assert_clean(app)
    missing = texts(app.warning)
    assert "fields are not in the file" in missing
    assert "`Période_construction`" in missing and "`Surface_utile`" not in missing
    assert not app.button(key="batch_run").disabled


def test_results_row_by_row_and_agreement_with_the_files_label(data_env):
    app = open_page(PAGE)
    upload(app, "batch.csv", batch_with_bad_rows())
    app.button(key="batch_run").click()
    app.run()
    assert_clean(app)
    results = frame_with(app, "predicted_label")
    assert len(results) == 40 and list(results.index[:2]) == [1, 2]
    assert list(results.columns[:2]) == ["predicted_label", "proba_A"]
    assert results["predicted_label"].notna().sum() == 37
    # Agreement, counted here from the results table the page shows.
    given = results["Etiquette_DPE"]
    compared = given.isin(list("ABCDEFG")) & results["predicted_label"].notna()
    share = (given[compared] == results.loc[compared, "predicted_label"]).mean()
    assert 0 < compared.sum() < 37
    assert (
        f"agrees with the file's `Etiquette_DPE` on **{share:.0%}** of the "
        f"{compared.sum()} predicted rows"
    ) in texts(app.info)


def test_the_template_csv_is_predicted_as_it_is(data_env):
    """The template offered on the page: the champion's fields, one example row that the
    champion predicts without a missing field, an error or a warning."""
    app = open_page(PAGE)
    assert app.get("download_button")[0].proto.label == "Download a template CSV"
    input_schema = read_manifest(Store(data_env)).input_schema
    template = template_csv(input_schema)
    upload(app, "template.csv", template)
    assert_clean(app)
    assert not app.warning
    app.button(key="batch_run").click()
    app.run()
    assert_clean(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Predicted"] == "1" and metrics["Predicted with a warning"] == "0"
