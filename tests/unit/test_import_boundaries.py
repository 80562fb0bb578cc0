"""Import boundaries between Portico's top-level packages, read from the source with ``ast``.

- the gateway imports no backend;
- a backend (``backends/<name>/``) imports no other backend (the generated ``stubs`` are shared);
- ``meshkit`` knows no backend, gateway, harness, tests or benchmarks;
- ``bench`` and ``harness`` import nothing from ``tests``.

Every import statement counts, those under ``if TYPE_CHECKING:`` and inside functions included.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.paths import REPO_ROOT

ROOT = REPO_ROOT
BACKENDS = ("users", "auth", "posts", "broker")


def module_name(path: Path, root: Path) -> str:
    """``gateway/routing/table.py`` → ``gateway.routing.table``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, relative imports resolved; ``from a import b`` names both ``a``
    and ``a.b`` (``b`` may be a submodule)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(f"{prefix}.")


def backend_of(name: str) -> str | None:
    """``users`` for ``backends.users.store``; None outside ``backends/<name>/``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "backends" and parts[1] in BACKENDS else None


@dataclass(frozen=True)
class Rule:
    description: str
    applies: Callable[[str], bool]  # to the importing module
    forbids: Callable[[str, str], bool]  # (importing module, imported module)


RULES = [
    Rule(
        "the gateway imports no backend",
        lambda mod: under(mod, "gateway"),
        lambda mod, imported: under(imported, "backends"),
    ),
    Rule(
        "a backend imports no other backend",
        lambda mod: backend_of(mod) is not None,
        lambda mod, imported: backend_of(imported) not in (None, backend_of(mod)),
    ),
    Rule(
        "meshkit imports no backend, gateway, harness, tests or bench",
        lambda mod: under(mod, "meshkit"),
        lambda mod, imported: any(
            under(imported, top) for top in ("backends", "gateway", "harness", "tests", "bench")
        ),
    ),
    Rule(
        "bench and harness import nothing from tests",
        lambda mod: under(mod, "bench") or under(mod, "harness"),
        lambda mod, imported: under(imported, "tests"),
    ),
]


def violations(rule: Rule, imports: Mapping[str, Iterable[str]]) -> list[str]:
    """``module → imported`` for every import of ``imports`` (module → what it imports) ``rule`` forbids."""
    return sorted(
        f"{mod} → {imported}"
        for mod, imported_names in imports.items()
        if rule.applies(mod)
        for imported in imported_names
        if rule.forbids(mod, imported)
    )


def tree_imports(root: Path) -> dict[str, set[str]]:
    """What each module of the checked packages imports."""
    found: dict[str, set[str]] = {}
    for top in ("gateway", "backends", "meshkit", "bench", "harness"):
        for path in sorted((root / top).rglob("*.py")):
            name = module_name(path, root)
            found[name] = imports_of(path.read_text(), name, is_package=path.name == "__init__.py")
    return found


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    return tree_imports(ROOT)


def test_every_checked_package_is_read(imports: dict[str, set[str]]) -> None:
    for module in (
        "gateway.app",
        "meshkit",
        "harness.backends",
        "bench.wrk",
        *(f"backends.{b}" for b in BACKENDS),
    ):
        assert module in imports


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.description)
def test_the_tree_keeps_the_rule(rule: Rule, imports: dict[str, set[str]]) -> None:
    assert violations(rule, imports) == []


# Each rule against a small synthetic tree: one import it must catch, one it must let through.
SYNTHETIC = [
    (RULES[0], {"gateway.dispatch": {"backends.users.store"}}, {"gateway.dispatch": {"stubs.users.v1"}}),
    (
        RULES[1],
        {"backends.posts.service": {"backends.users.models"}},
        {"backends.posts.service": {"backends.posts.models", "backends", "stubs.users.v1.users_pb2"}},
    ),
    (RULES[2], {"meshkit.events.relay": {"gateway.config"}}, {"meshkit.events.relay": {"meshkit.db"}}),
    (RULES[2], {"meshkit.rpc": {"tests.conftest"}}, {"meshkit.rpc": {"grpc"}}),
    (RULES[3], {"bench.users_get": {"tests.support"}}, {"bench.users_get": {"harness.users"}}),
    (RULES[3], {"harness.mesh": {"tests"}}, {"harness.mesh": {"testsuite"}}),
]


@pytest.mark.parametrize(("rule", "bad", "good"), SYNTHETIC, ids=lambda v: getattr(v, "description", ""))
def test_the_rule_can_fail(rule: Rule, bad: dict[str, set[str]], good: dict[str, set[str]]) -> None:
    assert len(violations(rule, bad)) == 1
    assert violations(rule, good) == []


def test_a_relative_import_is_resolved_against_the_package() -> None:
    source = "from ..users import store\nfrom . import models\nfrom .convert import to_proto\n"
    found = imports_of(source, "backends.posts.service")
    assert {"backends.users.store", "backends.posts.models", "backends.posts.convert"} <= found
    assert violations(RULES[1], {"backends.posts.service": found}) == [
        "backends.posts.service → backends.users",
        "backends.posts.service → backends.users.store",
    ]


def test_imports_inside_functions_and_type_checking_blocks_count(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import backends.auth.models\n"
        "def later() -> None:\n    from tests.conftest import ROOT\n"
    )
    package = tmp_path / "harness"
    package.mkdir()
    (package / "__init__.py").write_text(source)
    found = imports_of(source, module_name(package / "__init__.py", tmp_path), is_package=True)
    assert {"backends.auth.models", "tests.conftest", "tests.conftest.ROOT"} <= found
    assert violations(RULES[3], {"harness": found}) == [
        "harness → tests.conftest",
        "harness → tests.conftest.ROOT",
    ]
