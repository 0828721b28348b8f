"""The object store, on a local folder and on S3 spoken over HTTP (moto server on loopback)."""

import pytest

from core.errors import DpeError
from core.storage import Store, store_error
from tests.support.servers import free_port


@pytest.fixture(params=["local", "s3"])
def store_settings(request, settings):
    if request.param == "local":
        return settings
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    return settings.model_copy(
        update={"model_store_uri": f"s3://{bucket}/prefix", "s3_endpoint_url": endpoint}
    )


def test_write_read_list_and_remove(store_settings, tmp_path):
    store = Store(store_settings)
    assert not store.exists("models/dpe/champion/manifest.json")
    assert store.list("models") == []

    store.write_bytes("models/dpe/champion/manifest.json", b'{"v": 1}')
    (tmp_path / "model.bin").write_bytes(b"\x00weights")
    store.put_file(tmp_path / "model.bin", "models/dpe/champion/model.bin")
    store.write_bytes("datasets/abc.parquet", b"PAR1")

    assert store.exists("models/dpe/champion/manifest.json")
    assert store.read_bytes("models/dpe/champion/manifest.json") == b'{"v": 1}'
    assert store.list("models/dpe") == [
        "models/dpe/champion/manifest.json",
        "models/dpe/champion/model.bin",
    ]
    assert store.list("") == ["datasets/abc.parquet", *store.list("models")]
    store.get_file("models/dpe/champion/model.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == b"\x00weights"

    store.write_bytes("models/dpe/champion/manifest.json", b'{"v": 2}')  # replaced whole
    assert store.read_bytes("models/dpe/champion/manifest.json") == b'{"v": 2}'
    store.remove("models/dpe/champion/model.bin")
    store.remove("models/dpe/champion/model.bin")  # already gone: not an error
    assert store.list("models") == ["models/dpe/champion/manifest.json"]
    with pytest.raises(FileNotFoundError):
        store.read_bytes("models/dpe/champion/model.bin")


def test_uri_names_the_root(store_settings):
    store = Store(store_settings)
    assert store.uri("datasets/x.parquet") == f"{store_settings.store_uri}/datasets/x.parquet"
    assert store.uri() == store_settings.store_uri


def test_local_writes_leave_no_temporary_files(settings):
    store = Store(settings)
    for version in range(3):
        store.write_bytes("models/m.json", str(version).encode())
    assert sorted(p.name for p in (settings.home / "store" / "models").iterdir()) == ["m.json"]


def test_unreachable_s3_is_one_clear_error(settings):
    down = settings.model_copy(
        update={
            "model_store_uri": "s3://bucket/prefix",
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",  # nothing listens there
            "http_retries": 0,
        }
    )
    store = Store(down)
    for action in (
        lambda: store.exists("a"),
        lambda: store.read_bytes("a"),
        lambda: store.write_bytes("a", b"x"),
    ):
        with pytest.raises(DpeError, match=r"^object store s3://bucket/prefix/a unreachable: "):
            action()


def test_missing_bucket_is_an_error_when_writing(settings, s3_endpoint):
    nowhere = settings.model_copy(
        update={"model_store_uri": "s3://no-such-bucket/p", "s3_endpoint_url": s3_endpoint}
    )
    with pytest.raises(DpeError, match="no-such-bucket/p/a: bucket or folder not found"):
        Store(nowhere).write_bytes("a", b"x")


def test_store_error_passes_missing_objects_and_wraps_failures():
    with pytest.raises(FileNotFoundError), store_error("file:///x"):
        raise FileNotFoundError("x")
    with pytest.raises(DpeError, match="denied access"), store_error("file:///x"):
        raise PermissionError("no")
