"""The Portico processes as the Procfile starts them, for the deployment checks."""

from __future__ import annotations

import re

from infra.paths import REPO_ROOT

ROOT = REPO_ROOT


def procfile_modules() -> dict[str, str]:
    """Process name → Python module (``backends.users``, ``gateway``) of every Portico process."""
    modules = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        match = re.fullmatch(r"\s*exec python -m ((?:backends\.)?\w+)\s*", command)
        if match and match.group(1).split(".")[0] in ("backends", "gateway"):
            modules[name.strip()] = match.group(1)
    return modules
