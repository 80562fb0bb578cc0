"""Rough timings of refresh-token rotation: ``python -m bench.auth_store [DATABASE_URL] [N]``.

Migrates the database (a temporary SQLite file when no URL is given; a PostgreSQL URL must name an
existing, disposable database), then rotates one family N times (default 500), each rotation in its own
write transaction as the service does it, and prints the median, p95 and p99 of a whole transaction
(begin, lock, spend, insert the child, commit). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backends.auth.refresh_tokens import RefreshTokens
from harness.stores.auth import migrate
from meshkit.db.database import Database


async def _bench(url: str, count: int) -> dict[str, float]:
    await migrate(url)
    db = Database(url)
    tokens = RefreshTokens(
        idle=timedelta(days=7), absolute=timedelta(days=30), reuse_grace=timedelta(seconds=10)
    )
    try:
        now = datetime.now(UTC)
        async with db.write() as session:
            issued = await tokens.start_family(session, user_id=str(uuid.uuid4()), tenant_id="bench", now=now)
        token, elapsed = issued.token, []
        for _ in range(count):
            started = time.perf_counter()
            async with db.write() as session:
                result = await tokens.rotate(session, token, datetime.now(UTC))
            elapsed.append((time.perf_counter() - started) * 1000)
            assert result.outcome == "rotated"
            assert result.token is not None
            token = result.token
    finally:
        await db.dispose()
    cuts = statistics.quantiles(elapsed, n=100)
    return {"median_ms": statistics.median(elapsed), "p95_ms": cuts[94], "p99_ms": cuts[98]}


def main(argv: list[str]) -> None:
    count = int(argv[2]) if len(argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        url = argv[1] if len(argv) > 1 else f"sqlite+aiosqlite:///{Path(tmp) / 'auth.db'}"
        timings = asyncio.run(_bench(url, count))
    dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(dialect, count, "rotations:", ", ".join(f"{name} {value:.2f}" for name, value in timings.items()))


if __name__ == "__main__":
    main(sys.argv)
