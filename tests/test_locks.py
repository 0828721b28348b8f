"""The locks: everything installed comes from a file with hashes, and each lock still matches
what it was made from (`make lock` refreshes them; `uv lock --check` covers uv.lock itself)."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.support.cli import ROOT


def locked_pins(path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a `uv pip compile --generate-hashes` file."""
    text = path.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        found = re.match(r"^([A-Za-z0-9._-]+)(\[[^\]]*\])?==(\S+)(.*)$", line)
        if found:
            name = found[1].lower().replace("_", "-")
            pins[name] = (found[3], re.findall(r"--hash=sha256:([0-9a-f]{64})", found[4]))
    return pins


@pytest.mark.parametrize(
    ("tool", "at_least"), [("airflow", 100), ("checkov", 50), ("mlserver", 50)]
)
def test_each_tool_lock_pins_what_its_requirements_ask_with_hashes(tool, at_least):
    """Tools in environments of their own (.venv-airflow, .venv-checkov, .venv-mlserver): the
    tool and everything it pulls in, each with hashes."""
    pins = locked_pins(ROOT / f"requirements-{tool}.txt")
    assert len(pins) > at_least
    assert all(hashes for _, hashes in pins.values())
    for line in (ROOT / f"requirements-{tool}.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            wanted = Requirement(line)
            assert wanted.specifier.contains(pins[wanted.name.lower()][0]), line


def test_uv_is_bootstrapped_at_the_version_the_lock_keeps():
    pins = locked_pins(ROOT / "requirements-bootstrap.txt")
    assert set(pins) == {"uv"} and pins["uv"][1]
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    [locked] = [package for package in lock["package"] if package["name"] == "uv"]
    assert pins["uv"][0] == locked["version"]
    # The bootstrap file lists every platform's files; the lock, Linux's: each is among them.
    wheel_hashes = {wheel["hash"].removeprefix("sha256:") for wheel in locked["wheels"]}
    assert wheel_hashes <= set(pins["uv"][1])


def test_every_locked_package_carries_hashes():
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    for package in lock["package"]:
        if package.get("source", {}).get("editable") or package.get("source", {}).get("virtual"):
            continue  # the project itself
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files and all(f["hash"].startswith("sha256:") for f in files), package["name"]
