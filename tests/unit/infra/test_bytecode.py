"""Bytecode caching for the processes we start where PYTHONDONTWRITEBYTECODE would disable it."""

from __future__ import annotations

from pathlib import Path

from infra.bytecode import cached_bytecode_env


def test_without_bytecode_writes_the_cache_goes_under_our_directory(tmp_path: Path) -> None:
    env = cached_bytecode_env({"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/bin"}, tmp_path)
    assert env == {"PATH": "/bin", "PYTHONPYCACHEPREFIX": str(tmp_path)}


def test_python_s_own_caching_and_a_named_prefix_are_left_alone(tmp_path: Path) -> None:
    assert cached_bytecode_env({"PATH": "/bin"}, tmp_path) == {"PATH": "/bin"}
    named = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": "/elsewhere"}
    assert cached_bytecode_env(named, tmp_path) == named
    assert cached_bytecode_env({"PYTHONDONTWRITEBYTECODE": ""}, tmp_path) == {"PYTHONDONTWRITEBYTECODE": ""}
