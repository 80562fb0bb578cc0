"""Bytecode caching for the processes we start (``make up``, the test and benchmark harness).

Where ``PYTHONDONTWRITEBYTECODE`` is set (to keep ``__pycache__`` out of a checkout and the virtualenv),
every Python process we start compiled all its modules again at each start: about 2.5 s of CPU per
process on the development machine, most of ``make up``'s time and a large share of the test suite's on
two cores. Those processes cache their bytecode under a directory of ours instead
(``PYTHONPYCACHEPREFIX``); a prefix the environment already names is left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def cached_bytecode_env(base: Mapping[str, str], cache_dir: Path) -> dict[str, str]:
    """``base`` with bytecode cached under ``cache_dir`` where it would not be cached at all."""
    env = dict(base)
    if env.get("PYTHONDONTWRITEBYTECODE") and not env.get("PYTHONPYCACHEPREFIX"):
        del env["PYTHONDONTWRITEBYTECODE"]
        env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env
