"""Generate the Grafana dashboards from code.

.venv/bin/python -m observability.dashboards           # (re)write observability/grafana/dashboards/
.venv/bin/python -m observability.dashboards --check   # exit 1 when the committed files are stale
"""

from __future__ import annotations

import argparse
import sys

from observability.dashboards import DASHBOARDS
from observability.dashboards.render import OUTPUT, files, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m observability.dashboards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if the committed dashboards are stale")
    args = parser.parse_args(argv)
    expected = files(build() for build in DASHBOARDS)
    where = "observability/grafana/dashboards"
    if args.check:
        outdated = stale(expected, OUTPUT)
        if outdated:
            print(f"dashboards: stale in {where}: {', '.join(outdated)}; run `make dashboards`")
            return 1
        print(f"dashboards: {len(expected)} up to date in {where}")
        return 0
    changed = write(expected, OUTPUT)
    print(f"dashboards: wrote {', '.join(changed)}" if changed else f"dashboards: {where} unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
