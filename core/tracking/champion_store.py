"""The champion-store contract: where the champion lives in the object store and what its
manifest says. Promotion writes through `publish`; the API, the workbench, the CLI and the
drift report read through `read_manifest`/`current` and `download`.

    models/dpe/champion/v<N>/...        the files of the MLflow model (MLmodel, model.skops...)
    models/dpe/champion/manifest.json   written LAST: the atomic switch to version N

A reader reads the manifest first, then the files it lists (with their sha256), so during a
promotion it sees either the previous champion or the new one, complete. Every path the
manifest names stays inside the champion's folder, and a file is used only once its sha256
matches. Imports neither pandas nor sklearn nor mlflow: the API's quick start reads it.

What the checksums do not do: say a file can be trusted. Whoever writes the manifest
computes them (promotion, sync, or anyone who can write to the store), so they catch a file
changed or cut short after publication, never a hostile one published with its own digest.
Trust comes from the format and from what is accepted: the model file is skops, loaded with
this project's trusted types only and its trees checked (`core.tracking.model_format`), and
promotion and sync take only this project's training runs (`core.tracking.registry`).
`model_file` is `v<N>/model.skops`, or `v<N>/model.pkl` for a champion promoted before skops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.data.feature_sets import FEATURE_SETS
from core.data.schema import RECORD_FIELDS
from core.errors import Conflict, DpeError, NotFound
from core.storage import Store

log = logging.getLogger(__name__)

CHAMPION_DIR = "models/dpe/champion"
MANIFEST_PATH = f"{CHAMPION_DIR}/manifest.json"

_SHA256 = re.compile(r"[0-9a-f]{64}")
# A path segment a manifest may use: letters, digits and . _ - only (no `:`, `%`, `\`, `~`).
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` holds (the DESIGN's interface); `files`: {path: sha256}, paths
    relative to the champion's folder."""

    model_version: str
    model_file: str
    files: dict[str, str]
    registered_model: str | None = None
    run_id: str | None = None
    model_uri: str | None = None
    promoted_at: str | None = None
    dataset_version: str | None = None
    feature_set: str | None = None
    model_family: str | None = None
    labels: list[str] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    input_schema: list[dict] = field(default_factory=list)
    model_dir: str | None = None

    @classmethod
    def from_dict(cls, data: object, source: str = "the manifest") -> Manifest:
        """A Manifest from JSON data; DpeError naming the key when it is not one."""
        if not isinstance(data, dict):
            raise DpeError(f"{source} is not a JSON object")
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise DpeError(f"{source} lacks {', '.join(missing)}")
        values: dict[str, Any] = {}
        for key, check in _CHECKS.items():
            value = data.get(key)
            if value is None and key not in _REQUIRED:
                continue
            if key == "model_version" and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # an older writer wrote the version as a number
            problem = check(value)
            if problem:
                raise DpeError(f"{source}: {key} {problem}")
            values[key] = value
        unknown = sorted(set(data) - set(_CHECKS))
        if unknown:
            log.info("%s: keys not read: %s", source, ", ".join(unknown))
        manifest = cls(**values)
        manifest.check_paths(source)
        return manifest

    @classmethod
    def from_json(cls, data: bytes | str, source: str = "the manifest") -> Manifest:
        try:
            parsed = json.loads(data)
        except ValueError as error:
            raise DpeError(f"{source} is not valid JSON: {error}") from None
        return cls.from_dict(parsed, source)

    def to_dict(self) -> dict:
        """The manifest as JSON data (every key, None where unknown)."""
        return dataclasses.asdict(self)

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode()

    def check_paths(self, source: str = "the manifest") -> None:
        """DpeError unless every file path stays inside the champion's folder and
        `model_file` is one of the files."""
        for path in [*self.files, self.model_file, *([self.model_dir] if self.model_dir else [])]:
            problem = path_problem(path)
            if problem:
                raise DpeError(f"{source}: file path {path!r} {problem}: refusing it")
        if self.model_file not in self.files:
            raise DpeError(f"{source}: model_file {self.model_file!r} is not among its files")


def manifest_key(manifest: Manifest) -> tuple:
    """What tells two champions apart: a new promotion changes it."""
    return (manifest.model_version, manifest.run_id, manifest.files.get(manifest.model_file))


def path_problem(path: str) -> str | None:
    """Why `path` may not name a file of the champion (None when it may): relative, `/`-
    separated, each segment plain characters and none `.` or `..`."""
    segments = path.split("/")
    if not path or path.startswith("/"):
        return "is not a relative path"
    for segment in segments:
        if segment in ("", ".", "..") or not _SEGMENT.fullmatch(segment):
            return "leaves the champion's folder or uses characters a path may not"
    return None


def _text(value) -> str | None:
    return None if isinstance(value, str) else "must be text"


def _text_map(value, of: str) -> str | None:
    if not isinstance(value, dict):
        return f"must be an object of {of}"
    if not all(isinstance(k, str) for k in value):
        return "must have text keys"
    return None


def _files(value) -> str | None:
    problem = _text_map(value, "{path: sha256}")
    if problem is None and not all(
        isinstance(v, str) and _SHA256.fullmatch(v) for v in value.values()
    ):
        return "must map each path to a sha256 (64 hexadecimal digits)"
    return problem


def _metrics(value) -> str | None:
    problem = _text_map(value, "{name: number}")
    numbers = (int, float, type(None))
    if problem is None and not all(
        isinstance(v, numbers) and not isinstance(v, bool) for v in value.values()
    ):
        return "must map each name to a number"
    return problem


def _labels(value) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return None if ok else "must be a list of text"


def _input_schema(value) -> str | None:
    if not isinstance(value, list):
        return "must be a list of fields"
    for position, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            return f"entry {position} must be an object with a text name"
        categories = entry.get("categories")
        if categories is not None and not (
            isinstance(categories, list) and all(isinstance(c, str) for c in categories)
        ):
            return f"entry {entry['name']!r}: categories must be a list of text or null"
        for bound in ("min", "max"):
            if not isinstance(entry.get(bound), int | float | type(None)) or isinstance(
                entry.get(bound), bool
            ):
                return f"entry {entry['name']!r}: {bound} must be a number or null"
    return None


_REQUIRED = ("model_version", "model_file", "files")
_CHECKS = {
    "model_version": _text,
    "model_file": _text,
    "files": _files,
    "registered_model": _text,
    "run_id": _text,
    "model_uri": _text,
    "promoted_at": _text,
    "dataset_version": _text,
    "feature_set": _text,
    "model_family": _text,
    "labels": _labels,
    "metrics": _metrics,
    "input_schema": _input_schema,
    "model_dir": _text,
}


# --- Reading ---------------------------------------------------------------------------------


def current(store: Store) -> Manifest | None:
    """The champion's manifest; None when nothing was promoted; DpeError when it cannot be
    read or is not a manifest."""
    try:
        data = store.read_bytes(MANIFEST_PATH)
    except FileNotFoundError:
        return None
    return Manifest.from_json(data, store.uri(MANIFEST_PATH))


def read_manifest(store: Store) -> Manifest:
    """The champion's manifest; NotFound when there is none, DpeError when it cannot be used."""
    manifest = current(store)
    if manifest is None:
        raise NotFound(
            f"no champion model in {store.uri()}: train one and promote it "
            "(python -m core promote RUN_ID)"
        )
    return manifest


def download(store: Store, manifest: Manifest) -> dict[str, bytes]:
    """Every file the manifest lists, its sha256 checked: {relative path: content}."""
    manifest.check_paths()
    return {
        relative: _verified(store, relative, expected)
        for relative, expected in manifest.files.items()
    }


def verify(store: Store, manifest: Manifest) -> None:
    """Conflict when a published file is missing or no longer matches its sha256 (the
    store contradicts its manifest; the files are read and hashed, one at a time, not
    kept)."""
    manifest.check_paths()
    for relative, expected in manifest.files.items():
        _verified(store, relative, expected)


def _verified(store: Store, relative: str, expected: str) -> bytes:
    path = f"{CHAMPION_DIR}/{relative}"
    try:
        data = store.read_bytes(path)
    except FileNotFoundError:
        raise Conflict(f"champion file {relative} is missing from the store") from None
    if hashlib.sha256(data).hexdigest() != expected:
        # Neither digest is shown: a message must not disclose hashes of stored files.
        raise Conflict(
            f"champion file {relative} does not match its sha256 in the manifest: "
            "refusing to use it"
        )
    return data


# --- Writing ---------------------------------------------------------------------------------


def publish(store: Store, files: Mapping[str, bytes], manifest: Manifest) -> Manifest:
    """Write the champion's `files` ({path relative to the champion's folder: content}), then,
    last, its manifest with their sha256 (whatever `manifest.files` held); returns it."""
    published = dataclasses.replace(
        manifest,
        files={relative: hashlib.sha256(data).hexdigest() for relative, data in files.items()},
    )
    published.check_paths("the champion to publish")
    for relative, data in files.items():
        store.write_bytes(f"{CHAMPION_DIR}/{relative}", data)
    store.write_bytes(MANIFEST_PATH, published.to_json())
    return published


def input_schema(pipeline) -> list[dict]:
    """Every field of the model's feature set, all optional.

    `categories`: for a field with ADEME's closed vocabulary, that vocabulary plus any other
    value seen in training (what the model knows); None for an open one (département).
    """
    head = pipeline.named_steps["encode"]  # RecordEncoder, or RecordFrame for rules
    known = getattr(head, "known_values_", {})
    schema = []
    for name in FEATURE_SETS[head.feature_set].fields:
        spec = RECORD_FIELDS[name]
        categories = None
        if spec.kind == "category" and spec.categories:
            categories = sorted(set(spec.categories) | set(known.get(name, ())))
        schema.append(
            {
                "name": name,
                "type": "string" if spec.kind == "category" else "number",
                "required": False,
                "categories": categories,
                "min": spec.min,
                "max": spec.max,
                "unit": spec.unit,
            }
        )
    return schema
