"""The object store: dataset snapshots and the champion model, over fsspec.

`Settings.store_uri` is its root: a local folder (`file://...`, the default) or
`s3://bucket/prefix` (with `Settings.s3_endpoint_url` for MinIO, SeaweedFS...).
Paths given to `Store` are relative to that root and use `/`, e.g.
`datasets/<version>.parquet` or `models/dpe/champion/manifest.json`.
"""

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import fsspec
from botocore.exceptions import BotoCoreError, ClientError
from fsspec.implementations.local import LocalFileSystem

from core.config import Settings
from core.errors import DpeError, InvalidInput, Unavailable, unknown_host

# Failures that mean "the store cannot be used right now" rather than a bug in our code.
_STORE_FAILURES = (OSError, BotoCoreError, ClientError, TimeoutError)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@contextmanager
def store_error(uri: str, writing: bool = False):
    """Turn a store that cannot be reached into a one-line DpeError naming it: Unavailable
    (worth trying again) unless its host name does not resolve or access is denied.

    A missing object (FileNotFoundError) passes through when reading: whether that is
    an error is the caller's call. When writing it means the bucket or folder is missing.
    """
    try:
        yield
    except FileNotFoundError as error:
        if not writing:
            raise
        message = f"object store {uri}: bucket or folder not found: {_one_line(error)}"
        raise DpeError(message) from error
    except PermissionError as error:
        raise DpeError(f"object store {uri} denied access: {_one_line(error)}") from error
    except _STORE_FAILURES as error:
        if unknown_host(error):
            raise InvalidInput(
                f"object store {uri}: its host name does not resolve: check "
                f"DPE_MODEL_STORE_URI and DPE_S3_ENDPOINT_URL ({_one_line(error)})"
            ) from error
        raise Unavailable(f"object store {uri} unreachable: {_one_line(error)}") from error


class Store:
    """A folder of objects under `Settings.store_uri`."""

    def __init__(self, settings: Settings):
        self.root = settings.store_uri.rstrip("/")
        options = {}
        if self.root.startswith("s3://"):
            options = {
                # Other processes write here (promotion, ingest): never trust a cached listing.
                "use_listings_cache": False,
                "skip_instance_cache": True,
                "config_kwargs": {
                    "connect_timeout": settings.http_timeout_s,
                    "read_timeout": settings.http_timeout_s,
                    "retries": {"max_attempts": max(1, settings.http_retries)},
                },
            }
            if settings.s3_endpoint_url:
                options["client_kwargs"] = {"endpoint_url": settings.s3_endpoint_url}
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root, **options)
        self.is_local = isinstance(self.fs, LocalFileSystem)

    def _full(self, path: str) -> str:
        return f"{self._root_path}/{path.strip('/')}" if path.strip("/") else self._root_path

    def local_path(self, path: str) -> Path | None:
        """Where `path` lies on this machine's disk, for a local store; None for S3."""
        return Path(self._full(path)) if self.is_local else None

    def fs_paths(self, paths: list[str]) -> list[str]:
        """`paths` as `self.fs` names them, for readers given the filesystem (pyarrow)."""
        return [self._full(path) for path in paths]

    def uri(self, path: str = "") -> str:
        """The full URI of `path`, e.g. `s3://bucket/prefix/datasets/x.parquet`."""
        return f"{self.root}/{path.strip('/')}" if path.strip("/") else self.root

    def exists(self, path: str) -> bool:
        with store_error(self.uri(path)):
            return self.fs.exists(self._full(path))

    def read_bytes(self, path: str) -> bytes:
        """The object's content; FileNotFoundError when there is none."""
        with store_error(self.uri(path)):
            return self.fs.cat_file(self._full(path))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write an object whole: readers see the old content or the new, never a part."""
        with store_error(self.uri(path), writing=True):
            if self.is_local:
                self._replace_local(path, lambda tmp: self.fs.pipe_file(tmp, data))
            else:
                self.fs.pipe_file(self._full(path), data)  # an S3 PUT is atomic

    def put_file(self, local: str | Path, path: str) -> None:
        """Upload a local file to `path` (atomically, like `write_bytes`)."""
        with store_error(self.uri(path), writing=True):
            if self.is_local:
                self._replace_local(path, lambda tmp: self.fs.put_file(str(local), tmp))
            else:
                self.fs.put_file(str(local), self._full(path))

    def get_file(self, path: str, local: str | Path) -> None:
        """Download `path` to a local file; FileNotFoundError when there is none."""
        with store_error(self.uri(path)):
            self.fs.get_file(self._full(path), str(local))

    def list(self, prefix: str = "") -> list[str]:
        """Paths (relative to the root) of every object under `prefix`, sorted."""
        with store_error(self.uri(prefix)):
            found = self.fs.find(self._full(prefix))
        start = len(self._root_path) + 1
        return sorted(path[start:] for path in found)

    def remove(self, path: str) -> None:
        """Delete an object; a missing one is not an error."""
        with store_error(self.uri(path), writing=True):
            if self.fs.exists(self._full(path)):
                self.fs.rm_file(self._full(path))

    def _replace_local(self, path: str, write) -> None:
        # Write beside the target then rename: a rename within a folder is atomic.
        target = Path(self._full(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{uuid.uuid4().hex}")
        try:
            write(str(tmp))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
