"""Start-up migrations: Alembic runs only when the database is not at head (it costs ~12 MiB and a
second of CPU per process), and every doubt migrates."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

from alembic import command

from meshkit.db.migrations import alembic_config, at_head, script_heads, upgrade

ROOT = Path(__file__).resolve().parents[4]
USERS = ROOT / "backends" / "users" / "migrations"
TABLE = "users_alembic_version"


def write_script(folder: Path, name: str, body: str) -> None:
    (folder / "versions").mkdir(parents=True, exist_ok=True)
    (folder / "versions" / name).write_text(textwrap.dedent(body))


def test_heads_are_the_revisions_no_script_revises(tmp_path: Path) -> None:
    write_script(tmp_path, "a.py", 'revision: str = "a"\ndown_revision = None\n')
    write_script(tmp_path, "b.py", 'revision = "b"\ndown_revision: str | None = "a"\n')
    write_script(tmp_path, "c.py", 'revision = "c"\ndown_revision = "a"\n')
    assert script_heads(tmp_path) == {"b", "c"}
    write_script(tmp_path, "d.py", 'revision = "d"\ndown_revision = ("b", "c")\n')  # a merge
    assert script_heads(tmp_path) == {"d"}


def test_a_script_it_cannot_read_leaves_the_decision_to_alembic(tmp_path: Path) -> None:
    write_script(tmp_path, "a.py", 'revision = "a"\ndown_revision = None\n')
    write_script(tmp_path, "b.py", 'revision = make_id()\ndown_revision = "a"\n')
    assert script_heads(tmp_path) is None
    assert script_heads(tmp_path / "nowhere") is None


def test_the_users_scripts_head_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    config = alembic_config("sqlite+aiosqlite://", USERS, TABLE)
    assert script_heads(USERS) == set(ScriptDirectory.from_config(config).get_heads())


def test_a_database_behind_head_is_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    assert not asyncio.run(at_head(url, USERS, TABLE))  # no version table yet
    command.upgrade(alembic_config(url, USERS, TABLE), "0001")
    assert not asyncio.run(at_head(url, USERS, TABLE))
    asyncio.run(upgrade(url, USERS, TABLE))
    assert asyncio.run(at_head(url, USERS, TABLE))


def test_a_start_at_head_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    check = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from meshkit.db.migrations import upgrade
        asyncio.run(upgrade({url!r}, Path({str(USERS)!r}), {TABLE!r}))
        print(sorted({{name.split(".")[0] for name in sys.modules}} & {{"alembic", "mako"}}))
        """
    )

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run() == "['alembic', 'mako']"  # a new database: migrated
    assert run() == "[]"  # at head: Alembic is not even imported
