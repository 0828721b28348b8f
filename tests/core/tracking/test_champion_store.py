"""core.tracking.champion_store: the one contract for the champion in the store (publish, read,
verify, download), a manifest's keys and types, and its paths kept inside the folder."""

import hashlib
import json
import re

import pytest

from core.errors import DpeError
from core.serving.champion import load_champion
from core.storage import Store
from core.tracking import champion_store
from core.tracking.champion_store import CHAMPION_DIR, MANIFEST_PATH, Manifest

SHA = re.compile(r"[0-9a-f]{64}")
FILES = {"v1/model.pkl": b"model bytes", "v1/MLmodel": b"flavors: {}"}


def manifest(**fields) -> Manifest:
    base = {"model_version": "1", "model_file": "v1/model.pkl", "files": {}, "model_dir": "v1"}
    return Manifest(**(base | fields))


def write_manifest(settings, data) -> None:
    Store(settings).write_bytes(MANIFEST_PATH, json.dumps(data).encode())


def published(settings) -> dict:
    """A published champion's manifest, as JSON data."""
    return champion_store.publish(Store(settings), FILES, manifest()).to_dict()


def test_publish_writes_the_files_then_the_manifest_and_reads_back(settings, monkeypatch):
    store, writes = Store(settings), []
    original = Store.write_bytes
    monkeypatch.setattr(
        Store,
        "write_bytes",
        lambda self, path, data: writes.append(path) or original(self, path, data),
    )
    written = champion_store.publish(store, FILES, manifest(run_id="r1"))
    assert writes == [f"{CHAMPION_DIR}/v1/model.pkl", f"{CHAMPION_DIR}/v1/MLmodel", MANIFEST_PATH]
    assert written.files == {path: hashlib.sha256(data).hexdigest() for path, data in FILES.items()}
    assert champion_store.read_manifest(store) == written
    assert champion_store.download(store, written) == FILES
    assert champion_store.manifest_key(written) == ("1", "r1", written.files["v1/model.pkl"])


def test_no_champion_is_none_or_a_message_saying_how_to_make_one(settings):
    store = Store(settings)
    assert champion_store.current(store) is None
    with pytest.raises(DpeError, match="promote RUN_ID"):
        champion_store.read_manifest(store)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_schema": ["surface_utile"]}, "input_schema entry 0 must be an object"),
        ({"metrics": "0.9"}, "metrics must be an object"),
        ({"metrics": {"accuracy": "high"}}, "metrics must map each name to a number"),
        ({"files": ["v1/model.pkl"]}, "files must be an object"),
        ({"files": {"v1/model.pkl": "not a digest"}}, "files must map each path to a sha256"),
        ({"model_version": None}, "model_version must be text"),
        ({"labels": "ABCDEFG"}, "labels must be a list of text"),
    ],
)
def test_a_malformed_manifest_names_the_key(settings, change, message):
    write_manifest(settings, published(settings) | change)
    with pytest.raises(DpeError, match=message) as raised:
        load_champion(settings)
    assert "object has no attribute" not in str(raised.value)
    assert "manifest.json" in str(raised.value)


def test_a_manifest_that_is_not_an_object_or_lacks_keys_is_named(settings):
    write_manifest(settings, "v1/model.pkl")
    with pytest.raises(DpeError, match="is not a JSON object"):
        champion_store.read_manifest(Store(settings))
    write_manifest(settings, {"model_version": "1"})
    with pytest.raises(DpeError, match="lacks model_file, files"):
        champion_store.read_manifest(Store(settings))
    Store(settings).write_bytes(MANIFEST_PATH, b"{not json")
    with pytest.raises(DpeError, match="is not valid JSON"):
        champion_store.read_manifest(Store(settings))


@pytest.mark.parametrize(
    "path",
    [
        "../outside.pkl",
        "v1/../../outside.pkl",
        "/etc/passwd",
        "v1\\model.pkl",
        "s3://other-bucket/model.pkl",
        "v1/%2e%2e/x",
        "v1//model.pkl",
        "./v1/model.pkl",
        "",
    ],
)
def test_a_path_leaving_the_champions_folder_is_refused_before_any_read(
    settings, monkeypatch, path
):
    data = published(settings)
    outside = {**data["files"], path: hashlib.sha256(b"secret").hexdigest()}
    write_manifest(settings, data | {"files": outside})
    reads = []
    original = Store.read_bytes
    monkeypatch.setattr(Store, "read_bytes", lambda self, p: reads.append(p) or original(self, p))
    with pytest.raises(DpeError, match="refusing it"):
        load_champion(settings)
    assert reads == [MANIFEST_PATH]  # no file of the manifest was read


def test_model_file_must_be_one_of_the_files(settings):
    write_manifest(settings, published(settings) | {"model_file": "v1/other.pkl"})
    with pytest.raises(DpeError, match="model_file 'v1/other.pkl' is not among its files"):
        champion_store.read_manifest(Store(settings))


def test_a_changed_file_is_refused_without_disclosing_any_hash(settings):
    store = Store(settings)
    written = champion_store.publish(store, FILES, manifest())
    champion_store.verify(store, written)  # as published: fine
    store.write_bytes(f"{CHAMPION_DIR}/v1/MLmodel", b"changed")
    for check in (champion_store.verify, champion_store.download):
        with pytest.raises(DpeError, match="v1/MLmodel does not match its sha256") as raised:
            check(store, written)
        assert not SHA.search(str(raised.value))
    store.remove(f"{CHAMPION_DIR}/v1/MLmodel")
    with pytest.raises(DpeError, match="v1/MLmodel is missing"):
        champion_store.verify(store, written)


def test_to_json_and_back_is_the_same_manifest():
    written = manifest(files={"v1/model.pkl": "0" * 64}, metrics={"accuracy": 0.5})
    assert Manifest.from_json(written.to_json()) == written
