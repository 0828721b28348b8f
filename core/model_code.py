"""The part of `core` a pickled model needs at prediction time, packed with it.

A model is logged with its code (`code_paths`) so `mlflow models serve` loads it without
this repository. Only the modules its pickle refers to and what they import from `core`
go in: not the CLI, ingest, the registry or the tooling.
"""

import ast
import io
import pickle
import shutil
from pathlib import Path

import cloudpickle

PACKAGE = "core"
PACKAGE_DIR = Path(__file__).resolve().parent


class _ModuleRecorder(pickle.Unpickler):
    """Unpickles, noting the module of every class and function the pickle names."""

    def __init__(self, data: bytes):
        super().__init__(io.BytesIO(data))
        self.modules: set[str] = set()

    def find_class(self, module: str, name: str):
        self.modules.add(module)
        return super().find_class(module, name)


def pickled_modules(model) -> set[str]:
    """The `core` modules `model`'s pickle refers to (its classes and functions)."""
    recorder = _ModuleRecorder(cloudpickle.dumps(model))
    recorder.load()
    return {name for name in recorder.modules if name.split(".")[0] == PACKAGE}


def imported_modules(module: str) -> set[str]:
    """The `core` modules `module`'s source imports (at any level of the file)."""
    found = set()
    for node in ast.walk(ast.parse(_source_path(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from core import scales`: a module named as an attribute of the package
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if _is_package_module(name)}


def module_closure(model) -> list[str]:
    """Every `core` module loading `model` imports, sorted."""
    todo, seen = list(pickled_modules(model)), {PACKAGE}
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += imported_modules(module)
    return sorted(seen)


def pack(model, folder: Path) -> Path:
    """Copy the modules of `module_closure(model)` into `folder/core/`; returns that path."""
    target = folder / PACKAGE
    for module in module_closure(model):
        source = _source_path(module)
        destination = target / source.relative_to(PACKAGE_DIR)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    return target


def _source_path(module: str) -> Path:
    parts = module.split(".")[1:]
    path = PACKAGE_DIR.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _is_package_module(name: str) -> bool:
    return name.split(".")[0] == PACKAGE and _source_path(name).is_file()
