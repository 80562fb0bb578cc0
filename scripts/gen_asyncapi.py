"""Regenerate the AsyncAPI document of Portico's events — the one command for it.

    .venv/bin/python scripts/gen_asyncapi.py           # (re)write docs/asyncapi/asyncapi.json
    .venv/bin/python scripts/gen_asyncapi.py --check   # exit 1 when the committed file is stale (CI)

The document comes from the code: the channels each backend declares (gathered in
``backends/channels.py``) and the
``events.v1.Event`` descriptor (see ``meshkit/events/asyncapi.py``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from backends.channels import CHANNELS  # noqa: E402
from meshkit.events.asyncapi import asyncapi_document, render  # noqa: E402
from scripts.generated import sync  # noqa: E402

OUTPUT = ROOT / "docs" / "asyncapi" / "asyncapi.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed document is stale")
    args = parser.parse_args(argv)

    return sync(
        OUTPUT,
        render(asyncapi_document(CHANNELS)),
        tool="gen_asyncapi",
        root=ROOT,
        regenerate=".venv/bin/python scripts/gen_asyncapi.py",
        check=args.check,
    )


if __name__ == "__main__":
    sys.exit(main())
