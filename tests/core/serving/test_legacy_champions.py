"""Champions promoted by the release before the restructuring (cloudpickles naming `core.features`,
`core.models`, `core.rules`: tests/fixtures/legacy_champions) still load and serve the same
predictions, read by name only (core.tracking.legacy_pickle): nothing in the file runs."""

import json
import logging
import os
import pickle
from pathlib import Path

import httpx
import numpy as np
import pytest

from core.errors import Conflict
from core.serving.champion import load_champion
from core.storage import Store
from core.tracking.champion_store import CHAMPION_DIR, MANIFEST_PATH, publish, read_manifest
from tests.support.api import api_server, wait_until
from tests.support.champion import probabilities

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "legacy_champions"
FAMILIES = ("rf", "hgb", "sector-scale")


def install(settings, family: str) -> dict:
    """The fixture's store folder copied into the settings' store, as it was promoted;
    returns its expected predictions."""
    folder = FIXTURES / family
    store = Store(settings)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative.startswith("v1/"):
            store.write_bytes(f"{CHAMPION_DIR}/{relative}", path.read_bytes())
    store.write_bytes(MANIFEST_PATH, (folder / "manifest.json").read_bytes())
    return json.loads((folder / "expected_predictions.json").read_text())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_legacy_champion_serves_what_it_served(settings, family, caplog):
    expected = install(settings, family)
    with caplog.at_level(logging.WARNING, logger="core.serving.champion"):
        champion = load_champion(settings)
    assert "is a pickle promoted before skops (v1/model.pkl)" in caplog.text
    results = champion.predict(expected["records"])
    assert [r["label"] for r in results] == [p["label"] for p in expected["predictions"]]
    assert [r["warnings"] for r in results] == [p["warnings"] for p in expected["predictions"]]
    assert np.allclose(probabilities(results), probabilities(expected["predictions"]), atol=1e-9)


def test_the_api_serves_a_legacy_champion_over_a_socket(settings, tmp_path):
    expected = install(settings, "rf")
    with api_server(settings, tmp_path) as url:
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, "API ready")
        assert httpx.get(f"{url}/readyz").json()["model_version"] == "1"
        answer = httpx.post(f"{url}/predict", json={"records": expected["records"]}, timeout=30)
    assert answer.status_code == 200
    labels = [p["label"] for p in answer.json()["predictions"]]
    assert labels == [p["label"] for p in expected["predictions"]]


def test_a_pickle_in_the_store_that_runs_code_is_refused_and_runs_nothing(settings, tmp_path):
    """Whoever can write to the store writes the manifest too: its sha256 pass. The reader
    refuses the pickle by the names it uses, before calling any."""
    install(settings, "rf")
    marker = tmp_path / "ran"

    class System:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    legacy = read_manifest(Store(settings))
    publish(Store(settings), {"v1/model.pkl": pickle.dumps(System())}, legacy)
    with pytest.raises(Conflict, match=r"v1/model\.pkl refused: posix\.system is not a trusted"):
        load_champion(settings)
    assert not marker.exists()
