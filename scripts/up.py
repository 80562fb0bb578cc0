"""Run the whole mesh in the foreground under honcho until Ctrl-C or SIGTERM (``make up``).

Services that ``PORTICO_KAFKA_BOOTSTRAP`` / ``PORTICO_REDIS_URL`` point elsewhere are not started. The
processes share a forwarding secret (``PORTICO_FORWARDING_SECRET``, so the backends believe the gateway's
client addresses), kept in the run directory unless the environment sets one. Where
``PYTHONDONTWRITEBYTECODE`` is set, their compiled bytecode is kept in the run directory too.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

from honcho import manager
from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from infra.bytecode import cached_bytecode_env  # noqa: E402
from infra.kafka_server import cluster_bootstrap, local_brokers  # noqa: E402
from meshkit.config.defaults import KAFKA_PORT, LOOPBACK, REDIS_PORT  # noqa: E402

# Backends drain in-flight calls for PORTICO_SHUTDOWN_GRACE seconds (default 8); honcho's default
# of 5 s before SIGKILL would cut that short.
manager.KILL_WAIT = 15

# Infrastructure processes and the variable that, when set, names an existing service to use instead.
EXTERNAL = {"kafka": "PORTICO_KAFKA_BOOTSTRAP", "redis": "PORTICO_REDIS_URL"}


FORWARDING_SECRET_FILE = "forwarding-secret"  # noqa: S105 (a file name, not a secret)
PYCACHE_DIR = "pycache"


def run_directory(base: dict[str, str]) -> Path:
    return Path(base.get("PORTICO_RUN_DIR") or ROOT / ".run")


def bytecode_env(base: dict[str, str]) -> dict[str, str]:
    """The mesh's processes cache bytecode under the run directory where PYTHONDONTWRITEBYTECODE would
    have them compile every module at each start (:mod:`infra.bytecode`)."""
    return cached_bytecode_env(base, run_directory(base) / PYCACHE_DIR)


def forwarding_secret(run_dir: Path) -> str:
    """The local mesh's forwarding secret: read from the run directory, created there (0600) at first."""
    path = run_dir / FORWARDING_SECRET_FILE
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(secret)
    return secret


def app_env(base: dict[str, str]) -> dict[str, str]:
    """The environment of Portico's own processes: where the local Kafka and Redis listen, unless the
    operator named existing ones. Only app processes get it: ``infra run`` treats those same variables
    as "use an external service" and would start nothing."""
    env = dict(base)
    kafka_port = base.get("PORTICO_KAFKA_PORT", str(KAFKA_PORT))
    redis_port = base.get("PORTICO_REDIS_PORT", str(REDIS_PORT))
    env.setdefault("PORTICO_KAFKA_BOOTSTRAP", cluster_bootstrap(int(kafka_port), local_brokers(base)))
    env.setdefault("PORTICO_REDIS_URL", f"redis://{LOOPBACK}:{redis_port}/0")
    if not env.get("PORTICO_FORWARDING_SECRET"):
        env["PORTICO_FORWARDING_SECRET"] = forwarding_secret(run_directory(base))
    return env


def main() -> int:
    base = bytecode_env(dict(os.environ))
    base.setdefault("PORTICO_UP_STARTED", str(time.time()))
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    base["PYTHONPATH"] = str(ROOT)
    base.setdefault("PYTHONUNBUFFERED", "1")
    apps = app_env(base)
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    mgr = manager.Manager()
    for name, command in procfile.processes.items():
        if name in EXTERNAL and os.environ.get(EXTERNAL[name]):
            print(f"[up] {name}: using the existing service in {EXTERNAL[name]} (not started)", flush=True)
            continue
        mgr.add_process(name, command, quiet=False, env=base if name in EXTERNAL else apps, cwd=str(ROOT))
    mgr.loop()
    return mgr.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
