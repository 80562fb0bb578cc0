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
from scripts.generated import sync  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed reference is stale")
    args = parser.parse_args(argv)

    return sync(
        OUTPUT,
        markdown(),
        tool="gen_config_docs",
        root=ROOT,
        regenerate="make config-docs",
        check=args.check,
    )


if __name__ == "__main__":
    sys.exit(main())
