"""The documentation site: its reference pages follow the code, and it builds strict and
offline (`make docs`)."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mkdocs.exceptions import PluginError

import core.config
from core.cli import build_parser
from tooling import docs_site

ROOT = Path(__file__).resolve().parent.parent
# What a page would load from another host: scripts, stylesheets, fonts, icons, images, frames.
EXTERNAL_ASSET = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc=\"(?:https?:)?//"
    r"|<link\b[^>]*\bhref=\"(?:https?:)?//"
    r"|url\(\s*['\"]?(?:https?:)?//"
    r"|@import\s+['\"](?:https?:)?//"
)


def test_cli_reference_has_every_command_and_option():
    text = docs_site.cli_reference()
    [commands] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in commands.choices.items():
        assert f"\n## {name}\n" in text
        assert f"dpe {name} [-h]" in text  # its usage line, under the installed name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}`" in text, (name, option)


def test_settings_reference_has_every_setting_with_its_default():
    rows = {line.split(" | ")[0]: line for line in docs_site.settings_reference().splitlines()}
    for name, field in core.config.Settings.model_fields.items():
        [row] = [line for first, line in rows.items() if f"`DPE_{name.upper()}`" in first]
        assert field.description.split()[0] in row
        if isinstance(field.default, int | float | str) and field.default != "":
            assert f"`{str(field.default).lower()}`".lower() in row.lower(), row
    assert any("`MLFLOW_TRACKING_URI`" in first for first in rows)  # under MLflow's own name


def test_a_setting_without_description_fails_the_build(monkeypatch):
    class Undocumented(core.config.Settings):
        new_limit: int = 3

    monkeypatch.setattr(core.config, "Settings", Undocumented)
    with pytest.raises(PluginError, match="new_limit has no Field"):
        docs_site.settings_reference()


def test_api_reference_has_every_route_and_schema():
    schema = docs_site.openapi_schema()
    text = docs_site.openapi_reference()
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f"### {method.upper()} {path} {{#" in text
    for name in schema["components"]["schemas"]:
        assert f"### {name} {{#schema-" in text
    assert "[PredictResponse](#schema-predictresponse)" in text  # bodies link to their schema


def test_error_kinds_give_status_and_exit_code():
    rows = {line.split(" | ")[0]: line for line in docs_site.error_kinds().splitlines()}
    assert "| `Unavailable` | `unavailable` | 503 | 5 | yes |" in rows["| `Unavailable`"]
    assert "| `NotFound` | `not_found` | 404 | 3 | no |" in rows["| `NotFound`"]


def test_record_codes_give_their_meaning():
    from core.data.validation import ERROR_CODES

    text = docs_site.record_codes()
    assert "| `below_minimum` | a number below the field's lower bound" in text
    assert all(f"| `{code}` |" in text for code in ERROR_CODES)
    page = (docs_site.ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert (
        "<!-- dpe:generate error-kinds -->" in page and "<!-- dpe:generate record-codes -->" in page
    )


def test_an_unknown_generated_content_fails_the_build():
    with pytest.raises(PluginError, match="unknown generated content 'clis'"):
        docs_site.generate("# Page\n\n<!-- dpe:generate clis -->\n", "page.md")
    generated = docs_site.generate("<!-- dpe:generate modules tooling -->\n")
    assert "| `tooling.docs_site` |" in generated


def _network_closed() -> list[str]:
    """`unshare -rn` runs a command in a network namespace of its own, without any network:
    a build that tried to fetch anything would fail. Empty where the machine refuses it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


@pytest.mark.slow
def test_site_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    build = subprocess.run(
        [*_network_closed(), *command],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr

    loaded_from_elsewhere = [
        f"{page.relative_to(site)}: {match.group(0)}"
        for page in site.rglob("*")
        if page.suffix in (".html", ".css")
        for match in EXTERNAL_ASSET.finditer(page.read_text(errors="replace"))
    ]
    assert not loaded_from_elsewhere
    assert "dpe ingest [-h]" in (site / "reference" / "cli.html").read_text()
    assert "DPE_MAX_UPLOAD_MB" in (site / "reference" / "settings.html").read_text()
    schema = json.loads((site / "reference" / "openapi.json").read_text())
    assert schema == docs_site.openapi_schema()
    assert (site / "search" / "search_index.js").exists()  # search from file:// (offline plugin)
