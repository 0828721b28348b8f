"""The documentation site's generated reference (`make docs`), as mkdocs hooks.

A page of docs/ asks for generated content with a line of its own,
`<!-- dpe:generate NAME [ARGUMENT] -->`, NAME one of `GENERATORS`: the command line from the
argparse parsers, the HTTP API from the OpenAPI schema, the settings
from `core.config.Settings`, the error kinds from `core.errors`, the per-record problem codes from
`core.data.validation`, the import-linter contracts
from pyproject.toml, the module map from the modules' docstrings. The text is made from the
code each time the site is built, so the reference cannot drift from it; an unknown NAME, or
a setting without a description, fails the build. The raw schema is added to the site as
reference/openapi.json.
"""

import argparse
import ast
import contextlib
import functools
import inspect
import json
import logging
import re
import sys
import tomllib
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import annotated_types
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- dpe:generate (?P<name>[\w-]+)(?: (?P<argument>[\w.]+))? -->$", re.M)


def table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table; a cell's `|` and line breaks would break its row."""

    def cell(value: object) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(list(headers))]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


# --- The command line ---------------------------------------------------------------------


@contextlib.contextmanager
def _program_name(name: str) -> Iterator[None]:
    """`core.cli.build_parser` names the program after sys.argv[0]: document it as `dpe`."""
    saved = sys.argv
    sys.argv = [name]
    try:
        yield
    finally:
        sys.argv = saved


def _expanded_help(action: argparse.Action, prog: str) -> str:
    """An option's help with its `%(default)s`-style fields filled in, as --help shows it."""
    text = action.help or ""
    if "%(" in text:
        text = text % dict(vars(action), prog=prog)
    return text


def _option_rows(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in parser._actions:  # argparse has no public list of a parser's arguments
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(f"`{option}`" for option in action.option_strings)
        name = name or f"`{action.metavar or action.dest}`"
        if action.choices is not None:
            takes = " or ".join(f"`{choice}`" for choice in action.choices)
        elif action.nargs == 0:
            takes = "—"
        else:
            takes = f"`{action.metavar or action.dest.upper()}`"
        required = "yes" if action.required or not action.option_strings else ""
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
        rows.append([name, takes, required, shown, _expanded_help(action, parser.prog)])
    return rows


def cli_reference(argument: str | None = None) -> str:
    """Every command of `dpe`: what it does, its usage line and its options."""
    from core.cli import COMMANDS, build_parser

    with _program_name("dpe"):
        parser = build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {choice.dest: choice.help or "" for choice in subparsers._choices_actions}
    order = list(dict.fromkeys([*COMMANDS, *subparsers.choices]))
    names = [name for name in order if name in subparsers.choices]
    parts = [table(["command", "what it does"], [[f"[`{n}`](#{n})", summaries[n]] for n in names])]
    for name in names:
        command = subparsers.choices[name]
        usage = command.format_usage().removeprefix("usage: ").strip()
        summary = summaries[name][:1].upper() + summaries[name][1:]
        parts += [f"## {name}", f"{summary}.", f"```text\n{usage}\n```"]
        if command.description:
            parts.append(command.description)
        headers = ["option", "takes", "required", "default", "what"]
        parts.append(table(headers, _option_rows(command)))
    return "\n\n".join(parts)


# --- Settings -----------------------------------------------------------------------------

_BOUNDS = {
    annotated_types.Ge: ("≥", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("≤", "le"),
    annotated_types.Lt: ("<", "lt"),
}


def _type_name(annotation: object) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
    if kinds:  # `X | None`: the None means "unset", which the description explains
        return " or ".join(_type_name(kind) for kind in kinds)
    names: dict[object, str] = {
        str: "text",
        int: "integer",
        float: "number",
        bool: "`true` or `false`",
        Path: "path",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return "empty"
    return f"`{value}`"


def settings_reference(argument: str | None = None) -> str:
    """Each setting: its environment variable(s), type, default and description."""
    from core.config import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    rows = []
    for name, field in Settings.model_fields.items():
        if not field.description:
            raise PluginError(f"setting {name} has no Field(description=...) (core/config.py)")
        alias = field.validation_alias
        variables = getattr(alias, "choices", None) or [f"{prefix}{name}".upper()]
        bounds = [
            f"{symbol} {getattr(rule, attribute)}"
            for rule in field.metadata
            for kind, (symbol, attribute) in _BOUNDS.items()
            if isinstance(rule, kind)
        ]
        kind = _type_name(field.annotation) + (f" ({', '.join(bounds)})" if bounds else "")
        names = ", ".join(f"`{variable}`" for variable in variables)
        rows.append([names, kind, _default_text(field.default), field.description])
    return table(["variable", "type", "default", "what"], rows)


# --- The HTTP API -------------------------------------------------------------------------


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """Making the app sends every log line of the process to stdout as JSON (api.logs):
    keep the build's own logging as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:], root.level = handlers, level


@functools.cache
def openapi_schema() -> dict:
    """The API's schema with every setting at its default, whatever the environment says
    (`model_construct` reads neither the environment nor .env)."""
    from core.config import Settings

    with _logging_kept():
        from api.main import create_app

        return create_app(Settings.model_construct()).openapi()


def _anchor(*words: str) -> str:
    """The id given to a route's or a schema's heading (set explicitly: a tag and a schema
    may share a name)."""
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")


def _schema_type(schema: dict) -> str:
    """A JSON schema in a few words, a referenced schema as a link to its section."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor('schema', name)})"
    if "anyOf" in schema:
        return " or ".join(_schema_type(option) for option in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_schema_type(schema['additionalProperties'])}"
    if kind == "string" and "contentMediaType" in schema:
        return "file"
    return kind or "any"


def _example(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return f"```{'json' if not isinstance(value, str) else 'text'}\n{text}\n```"


def _operation(method: str, path: str, operation: dict) -> list[str]:
    heading = f"### {method.upper()} {path} {{#{_anchor(method, path)}}}"
    parts = [heading, f"**{operation.get('summary', '')}**"]
    if operation.get("description"):
        parts.append(operation["description"])
    if operation.get("security"):
        parts.append("Requires `Authorization: Bearer <token>`.")
    parameters = operation.get("parameters", [])
    if parameters:
        rows = [
            [
                f"`{p['name']}`",
                p["in"],
                "yes" if p.get("required") else "",
                _schema_type(p.get("schema", {})),
                p.get("description", ""),
            ]
            for p in parameters
        ]
        parts.append(table(["parameter", "in", "required", "type", "what"], rows))
    body = operation.get("requestBody", {}).get("content", {})
    for media_type, content in body.items():
        parts.append(f"Request body (`{media_type}`): {_schema_type(content.get('schema', {}))}.")
    rows, examples = [], []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        answers = [
            f"`{media}`" + (f": {_schema_type(c['schema'])}" if c.get("schema") else "")
            for media, c in content.items()
        ]
        rows.append([f"**{status}**", response.get("description", ""), "; ".join(answers)])
        examples += [(status, c["example"]) for c in content.values() if "example" in c]
    parts.append(table(["status", "when", "answer"], rows))
    for status, example in examples:
        parts += [f"Example answer, {status}:", _example(example)]
    return parts


def _schema_section(name: str, schema: dict) -> list[str]:
    parts = [f"### {name} {{#{_anchor('schema', name)}}}"]
    if schema.get("description"):
        parts.append(schema["description"])
    required = set(schema.get("required", []))
    rows = [
        [
            f"`{field}`",
            _schema_type(spec),
            "yes" if field in required else "",
            spec.get("description", ""),
        ]
        for field, spec in schema.get("properties", {}).items()
    ]
    if rows:
        parts.append(table(["field", "type", "required", "what"], rows))
    for example in schema.get("examples", []):
        parts += ["Example:", _example(example)]
    return parts


def openapi_reference(argument: str | None = None) -> str:
    """Every route of the API by tag, then every schema its bodies use."""
    schema = openapi_schema()
    routes = [
        (method, path, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]
    overview = [
        [f"[{method.upper()} {path}](#{_anchor(method, path)})", op.get("summary", "")]
        for method, path, op in routes
    ]
    parts = [table(["route", "what"], overview)]
    tags = dict.fromkeys(tag for _, _, op in routes for tag in op.get("tags", ["other"]))
    for tag in tags:
        parts.append(f"## {tag.capitalize()}")
        for method, path, operation in routes:
            if tag in operation.get("tags", ["other"]):
                parts += _operation(method, path, operation)
    parts.append("## Schemas")
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        parts += _schema_section(name, component)
    return "\n\n".join(parts)


# --- Errors, contracts, modules -----------------------------------------------------------


def error_kinds(argument: str | None = None) -> str:
    """The kinds of `core.errors`: code, HTTP status, exit code, retry, and when each is raised."""
    from core import errors

    kinds = [
        kind
        for kind in vars(errors).values()
        if inspect.isclass(kind) and issubclass(kind, errors.DpeError)
    ]
    rows = [
        [
            f"`{kind.__name__}`",
            f"`{kind.code}`",
            kind.http_status,
            kind.exit_code,
            "yes" if kind.retryable else "no",
            first_paragraph(kind.__doc__),
        ]
        for kind in kinds
    ]
    return table(["kind", "code", "HTTP", "exit code", "retry", "when"], rows)


def record_codes(argument: str | None = None) -> str:
    """The codes of per-record problems (`core.data.validation.ERROR_CODES`) and their meaning."""
    from core.data.validation import ERROR_CODES

    return table(
        ["code", "meaning"], [[f"`{code}`", meaning] for code, meaning in ERROR_CODES.items()]
    )


def _contract_rules(contract: dict) -> list[str]:
    def names(modules: Iterable[str]) -> str:
        return ", ".join(f"`{module}`" for module in modules)

    kind = contract["type"]
    if kind == "layers":
        return [
            f"{i}. {names(layer.split(' | '))}" for i, layer in enumerate(contract["layers"], 1)
        ]
    if kind == "forbidden":
        return [
            f"- {names(contract['source_modules'])}",
            f"- may not import {names(contract['forbidden_modules'])}",
        ]
    if kind == "independence":
        return [f"- {names(contract['modules'])}"]
    if kind == "acyclic_siblings":
        return [f"- the modules of {names(contract['ancestors'])}"]
    return [f"- (a `{kind}` contract: see pyproject.toml)"]


def contracts(argument: str | None = None) -> str:
    """The import-linter contracts of pyproject.toml, each with its rule."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    parts = []
    for contract in config["contracts"]:
        rules = "\n".join(_contract_rules(contract))
        parts.append(f"**{contract['name']}** (`{contract['type']}`)\n\n{rules}")
    return "\n\n".join(parts)


def module_map(argument: str | None = None) -> str:
    """Every module of a top-level package with the first paragraph of its docstring."""
    if argument is None:
        raise PluginError("`modules` needs a package: <!-- dpe:generate modules core -->")
    package = ROOT / argument
    rows = []
    for path in sorted(package.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text()))
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if doc or parts[-1] != "__init__":
            rows.append([f"`{name}`", first_paragraph(doc) or "—"])
    return f"### `{argument}`\n\n" + table(["module", "what it is"], rows)


GENERATORS: dict[str, Callable[[str | None], str]] = {
    "cli": cli_reference,
    "openapi": openapi_reference,
    "settings": settings_reference,
    "error-kinds": error_kinds,
    "record-codes": record_codes,
    "contracts": contracts,
    "modules": module_map,
}


def generate(markdown: str, where: str = "") -> str:
    """`markdown` with each marker line replaced by the content it names."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise PluginError(f"{where}: unknown generated content {name!r}")
        return GENERATORS[name](match["argument"])

    return MARKER.sub(replace, markdown)


# --- mkdocs hooks -------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    schema = json.dumps(openapi_schema(), indent=2, ensure_ascii=False)
    files.append(File.generated(config, "reference/openapi.json", content=schema))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return generate(markdown, page.file.src_uri)
