"""docs/benchmarks.md: each benchmark rewrites its own section and leaves the others."""

from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(heading: str, text: str) -> None:
    """Replace the section that starts with `heading` (e.g. "## API") by `text`, or append it."""
    content = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    start = content.find(heading + "\n")
    if start < 0:
        content = content.rstrip("\n") + "\n\n" + text
    else:
        end = content.find("\n## ", start + len(heading))
        tail = content[end + 1 :] if end >= 0 else ""
        content = content[:start] + text + ("\n" + tail if tail else "")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(content)
