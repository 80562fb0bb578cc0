"""Write a generated file, or with ``--check`` fail when the committed one is stale: the tail every
generator script shares."""

from __future__ import annotations

from pathlib import Path


def sync(output: Path, text: str, *, tool: str, root: Path, regenerate: str, check: bool) -> int:
    """Exit status of ``tool``: 1 when checking and ``output`` differs from ``text``; otherwise 0,
    rewriting ``output`` only when it changed."""
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    name = output.relative_to(root).as_posix()
    if current == text:
        print(f"{tool}: {name} is up to date")
        return 0
    if check:
        print(f"{tool}: {name} is stale; run `{regenerate}`")
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"{tool}: wrote {name}")
    return 0
