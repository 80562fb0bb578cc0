"""The relay's lock file on SQLite: exclusive between holders (in one process too), released after."""

from __future__ import annotations

from pathlib import Path

from meshkit.events.relay_lock import lock_file, try_lock


def test_one_holder_at_a_time_and_released_after(tmp_path: Path) -> None:
    path = tmp_path / "users.db.users_outbox.relay.lock"
    with try_lock(path) as first:
        assert first
        with try_lock(path) as second:
            assert not second  # another relay skips its round
    with try_lock(path) as again:
        assert again


def test_the_lock_file_sits_beside_the_database_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    assert lock_file(url, "users_outbox") == tmp_path / "users.db.users_outbox.relay.lock"
    assert lock_file("sqlite+aiosqlite:///:memory:", "users_outbox") is None
    assert lock_file("sqlite+aiosqlite://", "users_outbox") is None
