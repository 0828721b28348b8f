"""api.state.ServingState against a real local store: a champion whose published files are
changed or removed while it is served keeps serving, and the state says why (degraded)."""

import re

from api.state import ServingState
from core.storage import Store
from core.tracking.champion_store import CHAMPION_DIR
from tests.support.champion import publish_champion


def served(settings) -> ServingState:
    state = ServingState(settings.model_copy(update={"verify_interval_s": 0.0}))
    state.refresh()
    state.refresh()  # the quick champion, then the checked one
    assert state.champion is not None and not state.champion.light and state.problem is None
    return state


def test_a_file_changed_under_the_served_champion_is_reported(settings, pipelines, records):
    publish_champion(settings, pipelines["1"], 1)
    state = served(settings)
    Store(settings).write_bytes(f"{CHAMPION_DIR}/v1/MLmodel", b"tampered")
    assert state.refresh() is False
    assert state.problem == (
        "champion file v1/MLmodel does not match its sha256 in the manifest: refusing to use it"
    )
    assert not re.search(r"[0-9a-f]{64}", state.problem)  # no hash disclosed
    assert state.champion.model_version == "1"  # still serving what was verified at load
    assert state.champion.predict(records[:2])[0]["label"] is not None


def test_a_removed_file_is_reported_and_a_new_promotion_clears_it(settings, pipelines):
    publish_champion(settings, pipelines["1"], 1)
    state = served(settings)
    Store(settings).remove(f"{CHAMPION_DIR}/v1/model.skops")
    state.refresh()
    assert state.problem == "champion file v1/model.skops is missing from the store"
    publish_champion(settings, pipelines["2"], 2)
    assert state.refresh() is True
    assert state.problem is None and state.champion.model_version == "2"


def test_files_are_not_hashed_again_before_the_interval(settings, pipelines, monkeypatch):
    publish_champion(settings, pipelines["1"], 1)
    state = served(settings)
    state.settings = state.settings.model_copy(update={"verify_interval_s": 3600.0})
    reads = []
    original = Store.read_bytes
    monkeypatch.setattr(Store, "read_bytes", lambda self, p: reads.append(p) or original(self, p))
    state.refresh()
    assert reads == [f"{CHAMPION_DIR}/manifest.json"] and state.problem is None
