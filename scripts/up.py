"""Run the whole mesh in the foreground under honcho until Ctrl-C or SIGTERM (``make up``).

Services that ``PORTICO_KAFKA_BOOTSTRAP`` / ``PORTICO_REDIS_URL`` point elsewhere are not started.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from honcho import manager
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent
# Backends drain in-flight calls for PORTICO_SHUTDOWN_GRACE seconds (default 8); honcho's default
# of 5 s before SIGKILL would cut that short.
manager.KILL_WAIT = 15

EXTERNAL = {"kafka": "PORTICO_KAFKA_BOOTSTRAP", "redis": "PORTICO_REDIS_URL"}


def main() -> int:
    env = dict(os.environ)
    env.setdefault("PORTICO_UP_STARTED", str(time.time()))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("PYTHONUNBUFFERED", "1")
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    mgr = manager.Manager()
    for name, command in procfile.processes.items():
        if name in EXTERNAL and os.environ.get(EXTERNAL[name]):
            print(f"[up] {name}: using {os.environ[EXTERNAL[name]]} (not started)", flush=True)
            continue
        mgr.add_process(name, command, quiet=False, env=env, cwd=str(ROOT))
    mgr.loop()
    return mgr.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
