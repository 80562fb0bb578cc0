"""``python -m bench.memtrace``: run the gateway (``python -m gateway``) with tracemalloc on, dumping a
snapshot every ``MEMTRACE_SECONDS`` (default 60) into ``MEMTRACE_DIR``, with
``MEMTRACE_FRAMES`` frames per allocation (default 4).

For finding what grows: :func:`top_growth` compares two snapshots by allocation site. A debugging aid
of the soak (``bench.soak --tracemalloc``); tracemalloc slows the process and adds its own memory, so
the RSS of a traced run is not a figure to report.
"""

from __future__ import annotations

import os
import runpy
import threading
import time
import tracemalloc
from pathlib import Path


def _dump_forever(directory: Path, seconds: float) -> None:
    index = 0
    while True:
        time.sleep(seconds)
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        )
        path = directory / f"snapshot-{index:04d}.pickle"
        snapshot.dump(str(path) + ".part")
        os.replace(str(path) + ".part", path)  # readers never see half a snapshot
        index += 1


def top_growth(before: Path, after: Path, limit: int = 15) -> list[str]:
    """The allocation sites that grew most between two snapshots, one line each (innermost frames
    of the site's traceback, which name the structure that holds the memory)."""
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    lines = []
    for stat in new.compare_to(old, "traceback")[:limit]:
        frames = " <- ".join(
            f"{'/'.join(frame.filename.rsplit('/', 2)[-2:])}:{frame.lineno}"
            for frame in list(stat.traceback)[::-1][:5]
        )
        lines.append(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {frames}")
    return lines


def main() -> None:
    directory = Path(os.environ["MEMTRACE_DIR"])
    directory.mkdir(parents=True, exist_ok=True)
    # Few frames: tracing every allocation with deep tracebacks slows the gateway to a crawl.
    tracemalloc.start(int(os.environ.get("MEMTRACE_FRAMES", "4")))
    seconds = float(os.environ.get("MEMTRACE_SECONDS", "60"))
    threading.Thread(target=_dump_forever, args=(directory, seconds), name="memtrace", daemon=True).start()
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
