"""A marked section of a Markdown file that a benchmark rewrites with its latest figures on each run.

The markers are HTML comments (invisible when rendered); everything between them is replaced whole.
A file without them gets the section appended, markers included, so no run's figures are lost; a
begin marker without its end is an error rather than a guess at where the section stops.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return (
        f"<!-- {name}: begin (written by each run; edits between these markers are overwritten) -->",
        f"<!-- {name}: end -->",
    )


def replace_section(text: str, name: str, body: str) -> str:
    begin, end = markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    start = text.find(begin)
    if start < 0:
        return f"{text.rstrip()}\n\n{block}\n"
    stop = text.find(end, start + len(begin))
    if stop < 0:
        raise ValueError(f"{begin!r} without {end!r}")
    return text[:start] + block + text[stop + len(end) :]


def write_section(path: Path, name: str, body: str) -> None:
    path.write_text(replace_section(path.read_text() if path.exists() else "", name, body))
