"""The session's PostgreSQL is a real server the backends can use (asyncpg, the driver they use)."""

from __future__ import annotations

import asyncpg
import pytest

from harness.infra import InfraEnv

pytestmark = pytest.mark.infra


async def test_postgres_accepts_connections_and_writes(infra: InfraEnv) -> None:
    dsn = infra.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        await conn.execute("CREATE TEMP TABLE probe (id int PRIMARY KEY, name text)")
        await conn.execute("INSERT INTO probe VALUES (1, 'portico')")
        assert await conn.fetchval("SELECT name FROM probe WHERE id = 1") == "portico"
    finally:
        await conn.close()
    assert int(str(version).split(".")[0]) >= 13
