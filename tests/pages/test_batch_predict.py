"""Batch predict: empty state; upload, preview, rejection report, distribution, download."""

import io

import pandas as pd

from core.synth import generate_records
from tests.pages.conftest import assert_clean, open_page, texts

PAGE = "pages/5_Batch_predict.py"


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
    reasons = frame_with(app, "Rule")
    rules = dict(zip(reasons["Rule"], reasons["Rows"], strict=True))
    assert rules.get("Surface_utile must be > 0") == 2, rules
    assert any("Année_construction" in rule for rule in rules), rules
    assert any("Secteur_activité" in rule and "category" in rule for rule in rules), rules
    rejected = frame_with(app, "error")
    assert sorted(rejected["row"]) == [4, 8, 13, 21]  # spreadsheet rows (header is 0)
    assert metrics["Rejected"] == "4" and metrics["Predicted"] == "36"
    button = app.get("download_button")[0]
    assert button.proto.label.startswith("Download the results")


def test_download_holds_every_row_with_its_prediction(data_env, data_home):
    _, built = data_home
    from core import predict
    from core.config import get_settings
    from core.ingest import read_csv

    data = batch_with_bad_rows()
    champion = predict.load_champion(get_settings())
    expected = predict.predict_frame(champion, read_csv(data))
    app = open_page(PAGE)
    upload(app, "batch.csv", data)
    app.button(key="batch_run").click()
    app.run()
    result = app.session_state["batch_result"]["predicted"]
    output = pd.read_csv(io.BytesIO(predict.to_csv_bytes(result)), dtype=str)
    assert len(output) == 40
    assert list(output.columns[-9:]) == [
        "predicted_label",
        *[f"proba_{x}" for x in "ABCDEFG"],
        "error",
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
