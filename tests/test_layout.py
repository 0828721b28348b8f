"""The shape of the code, checked by `make lint`: no import cycle in core/, the library
never imports its CLI, UIs or tooling, and modules short enough to read at once."""

import ast
from pathlib import Path

from tests.support.cli import ROOT

MAX_LINES = 400
# Modules that are mostly a data table may be longer.
DATA_TABLES = {"core/schema.py", "tooling/synth_tables.py"}
CHECKED_FOLDERS = ("core", "api", "ui", "views", "tooling")
# Top-level packages the library (core/ outside core/cli/) must never import; nor core.cli.
FOREIGN_TO_CORE = {"streamlit", "fastapi", "api", "ui", "views", "tooling", "tests"}


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports at run time (annotations-only imports excluded);
    `from package import name` counts `package.name` too, in case `name` is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = (package or module_name(path)).split(".")
                base = ".".join(anchor[: len(anchor) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def core_graph() -> dict[str, set[str]]:
    """core module -> the core modules it imports (core/cli/ included: it is part of core/)."""
    modules = {module_name(path): path for path in python_files("core")}
    return {
        name: {imported for imported in imported_modules(path) if imported in modules} - {name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, then "done"
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_in_core():
    cycle = find_cycle(core_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_library_imports_neither_its_cli_nor_ui_nor_tooling():
    offending = []
    for path in python_files("core"):
        # core/cli/ is the CLI layer; core/__main__.py (`python -m core`) its entry point.
        if "cli" in path.relative_to(ROOT / "core").parts or path.name == "__main__.py":
            continue
        for name in imported_modules(path):
            if name.split(".")[0] in FOREIGN_TO_CORE or name.startswith("core.cli"):
                offending.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offending, "\n".join(offending)


def test_modules_are_short_enough_to_read_at_once():
    too_long = []
    workbench = [ROOT / "app.py"] if (ROOT / "app.py").exists() else []
    for path in python_files(*CHECKED_FOLDERS) + workbench:
        relative = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and relative not in DATA_TABLES:
            too_long.append(f"{relative}: {lines} lines")
    assert not too_long, f"over {MAX_LINES} lines (split along a seam):\n" + "\n".join(too_long)
