"""One process per SQLite file: the second to claim it is refused, the lock goes with its holder."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshkit.db.single_replica import REFUSAL, DatabaseHeld, hold_sqlite, sqlite_file


def test_a_second_claim_on_the_same_file_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'run' / 'users.db'}"
    first = hold_sqlite(url)
    assert first is not None
    with pytest.raises(DatabaseHeld) as refused:
        hold_sqlite(url)  # a lock per open file: a second open is another holder, as another process
    assert str(refused.value).startswith(REFUSAL)
    assert str(tmp_path / "run" / "users.db") in str(refused.value)
    first.close()
    again = hold_sqlite(url)
    assert again is not None
    again.close()


def test_only_sqlite_files_are_locked() -> None:
    assert hold_sqlite("postgresql+asyncpg://portico@127.0.0.1:5432/portico") is None
    assert sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert sqlite_file("sqlite+aiosqlite:///file:db?mode=memory&uri=true") is None
    assert sqlite_file("sqlite+aiosqlite:////data/run/users.db") == Path("/data/run/users.db")
