"""Regenerate the configuration reference from the settings classes — the one command for it.

    .venv/bin/python scripts/gen_config_docs.py           # (re)write docs/configuration.md
    .venv/bin/python scripts/gen_config_docs.py --check   # exit 1 when the committed file is stale (CI)

The rows come from the code (``meshkit/config/reference.py`` walks each process's settings class).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from meshkit.config.reference import markdown  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed reference is stale")
    args = parser.parse_args(argv)

    text = markdown()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else None
    name = OUTPUT.relative_to(ROOT).as_posix()
    if args.check:
        if current != text:
            print(f"gen_config_docs: {name} is stale; run `make config-docs`")
            return 1
        print(f"gen_config_docs: {name} is up to date")
        return 0
    if current != text:
        OUTPUT.write_text(text, encoding="utf-8")
        print(f"gen_config_docs: wrote {name}")
    else:
        print(f"gen_config_docs: {name} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
