"""``make up``'s environment (scripts/up.py): where bytecode is cached when PYTHONDONTWRITEBYTECODE is set."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]


def load_up() -> ModuleType:
    spec = importlib.util.spec_from_file_location("up", ROOT / "scripts" / "up.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


up = load_up()


def test_without_bytecode_writes_the_cache_goes_under_the_run_directory(tmp_path: Path) -> None:
    env = up.bytecode_env({"PYTHONDONTWRITEBYTECODE": "1", "PORTICO_RUN_DIR": str(tmp_path)})
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "pycache")


def test_the_default_run_directory_is_the_checkouts() -> None:
    env = up.bytecode_env({"PYTHONDONTWRITEBYTECODE": "1"})
    assert env["PYTHONPYCACHEPREFIX"] == str(ROOT / ".run" / "pycache")


def test_python_s_own_caching_and_a_named_prefix_are_left_alone() -> None:
    assert up.bytecode_env({"PATH": "/bin"}) == {"PATH": "/bin"}  # __pycache__ beside the sources
    named = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/elsewhere"}
    assert up.bytecode_env(named) == named
    assert up.bytecode_env({"PYTHONDONTWRITEBYTECODE": ""}) == {"PYTHONDONTWRITEBYTECODE": ""}  # unset
