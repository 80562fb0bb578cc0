"""Install Debian packages non-interactively, without letting their services start."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
APT_LISTS = Path("/var/lib/apt/lists")


class AptError(RuntimeError):
    pass


@contextlib.contextmanager
def _services_not_started() -> Iterator[None]:
    """Debian starts redis/postgresql services on install (on 6379/5432, our default ports): forbid it.

    policy-rc.d exiting 101 is Debian's documented switch for this; an existing one is left alone.
    """
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text("#!/bin/sh\n# temporary, written by `python -m infra install`\nexit 101\n")
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def _lists_empty() -> bool:
    return not any(APT_LISTS.glob("*_Packages*"))


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False)


def install(packages: list[str]) -> None:
    """`apt-get install -y --no-install-recommends`, running `apt-get update` only when needed."""
    if os.geteuid() != 0:
        raise AptError(
            f"missing {' '.join(packages)}: install them (sudo apt-get install {' '.join(packages)})"
        )
    install_argv = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    with _services_not_started():
        if _lists_empty():
            _run(["apt-get", "update"])
        result = _run(install_argv)
        if result.returncode != 0:
            update = _run(["apt-get", "update"])
            if update.returncode != 0:
                raise AptError(f"apt-get update failed:\n{update.stdout}{update.stderr}")
            result = _run(install_argv)
    if result.returncode != 0:
        raise AptError(
            f"apt-get install {' '.join(packages)} failed:\n{result.stdout[-3000:]}{result.stderr}"
        )
