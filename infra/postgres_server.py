"""PostgreSQL cluster setup and command line, using Debian's server binaries.

PostgreSQL refuses to run as root, so as root the cluster belongs to (and runs as) the `postgres` OS
user; as anyone else it runs as the current user. Layout under the given folder: `pgdata/` (the
cluster, with database `portico` created at init time) and the server log.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path

from infra.procs import as_user

SUPERUSER = "postgres"
DATABASE = "portico"
OS_USER_WHEN_ROOT = "postgres"
# Disposable dev/test data: trade crash safety for speed (a clean shutdown still writes everything).
SPEED_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def bin_dir() -> Path:
    """Newest /usr/lib/postgresql/<major>/bin (Debian puts server binaries there, not on PATH)."""
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    if not candidates:
        raise RuntimeError("PostgreSQL server not found: run `python -m infra install --only postgres`")
    return max(candidates, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))


def os_user() -> str | None:
    """The OS user to run the server as: `postgres` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(OS_USER_WHEN_ROOT)
    except KeyError as exc:
        raise RuntimeError(
            "running as root needs the `postgres` OS user (apt-get install postgresql)"
        ) from exc
    return OS_USER_WHEN_ROOT


def url(port: int) -> str:
    return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"


def cluster_dir(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def make_traversable(path: Path) -> None:
    """Let the `postgres` user reach `path`: add o+x (search only, not read) to ancestors lacking it.

    pytest's temp root is 0700, which otherwise hides the data dir from the postgres user.
    """
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _run_as(argv: list[str], user: str | None, *, stdin: str | None = None) -> None:
    result = subprocess.run(
        as_user(argv, user),  # not Popen's user=: see as_user
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def prepare(data_dir: Path) -> bool:
    """Make the folder reachable for the server's OS user and create the cluster if needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if os_user() is not None:
        make_traversable(data_dir)
    return init_cluster(data_dir)


def init_cluster(data_dir: Path) -> bool:
    """initdb + `CREATE DATABASE portico` (single-user mode, no server needed) the first time only.

    Builds into a sibling folder and renames it, so an interrupted init is never mistaken for a cluster.
    Returns True when it created the cluster.
    """
    target = cluster_dir(data_dir)
    if (target / "PG_VERSION").exists():
        return False
    user = os_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / "pgdata.init"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(staging, entry.pw_uid, entry.pw_gid)
    bins = bin_dir()
    _run_as(
        [
            str(bins / "initdb"),
            "-D",
            str(staging),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        user,
    )
    _run_as(
        [
            str(bins / "postgres"),
            "--single",
            "-D",
            str(staging),
            "-F",
            "-c",
            "exit_on_error=true",
            "postgres",
        ],
        user,
        stdin=f"CREATE DATABASE {DATABASE};\n",
    )
    staging.rename(target)
    return True


def server_argv(*, port: int, data_dir: Path, durable: bool = False) -> list[str]:
    """postmaster on 127.0.0.1:<port> only; no unix socket (avoids /tmp clashes and socket path limits).

    ``durable`` keeps PostgreSQL's crash safety (no :data:`SPEED_SETTINGS`): a test that SIGKILLs the server
    and counts what survived needs every acknowledged commit on disk."""
    argv = [
        str(bin_dir() / "postgres"),
        "-D",
        str(cluster_dir(data_dir)),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
    ]
    for setting in () if durable else SPEED_SETTINGS:
        argv += ["-c", setting]
    return argv


def is_ready(port: int, *, timeout: float = 2.0) -> bool:
    """A real login and `select 1` on database portico (pg_isready would only check the listener)."""
    argv = [
        str(bin_dir() / "psql"),
        "-X",
        "-q",
        "-A",
        "-t",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        SUPERUSER,
        "-d",
        DATABASE,
        "-c",
        "select 1",
    ]
    env = {**os.environ, "PGCONNECT_TIMEOUT": str(max(1, int(timeout)))}
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 1, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and result.stdout.strip() == "1"
