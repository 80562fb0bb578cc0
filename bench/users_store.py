"""Rough timings of the users store: ``python -m bench.users_store [DATABASE_URL] [N]``.

Seeds N users (default 10 000) into a fresh tenant of a migrated database (a temporary SQLite file when
no URL is given; a PostgreSQL URL must name an existing, disposable database), then prints the median
of a few runs of each search and list call. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backends.users.models import users
from backends.users.store import UserStore, key_columns, search_columns
from harness.stores.users import migrate
from meshkit.db.database import Database

FIRST = ["John", "Jane", "Émile", "Will", "Ada", "Grace", "Linus", "Mary", "Seán", "Zoë"]
LAST = ["Doe", "Smith", "Running", "Brown", "Lee", "García", "Müller", "O'Brien", "Nguyen", "Kowalski"] * 2
QUERIES = ["john", "runs", '"john doe"', "john smith", "zoe", "example", "nobody", "jo hn do e sm ith"]


def _rows(tenant_id: str, count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(days=1)
    rows = []
    for i in range(count):
        first, last = FIRST[i % len(FIRST)], LAST[i // len(FIRST) % len(LAST)]
        username, email = f"user{i}", f"{first.lower()}.{i}@example.com"
        created = start + timedelta(milliseconds=i)
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant_id,
                "username": username,
                "email": email,
                "first_name": first,
                "last_name": last,
                "phone": "",
                "avatar_url": "",
                "roles": ["user"],
                "is_active": True,
                "created_at": created,
                "updated_at": created,
                "deleted_at": None,
                **key_columns(username=username, email=email),
                **search_columns(first_name=first, last_name=last, email=email, username=username),
            }
        )
    return rows


async def _median_ms(call: Callable[[], Awaitable[object]], runs: int = 5) -> float:
    await call()  # warm caches and statement compilation
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def bench(url: str, count: int) -> None:
    await migrate(url)
    db = Database(url)
    store = UserStore(db.dialect)
    tenant = f"bench-{secrets.token_hex(4)}"
    started = time.perf_counter()
    async with db.write() as session:
        await session.execute(users.insert(), _rows(tenant, count))
    print(f"{db.dialect}: seeded {count} users into tenant {tenant} in {time.perf_counter() - started:.2f}s")

    async def one_create() -> None:
        async with db.write() as session:
            name = secrets.token_hex(6)
            await store.create(
                session, tenant_id=tenant, username=name, email=f"{name}@x.test", first_name="Kim"
            )

    print(f"  create (own transaction): {await _median_ms(one_create, runs=20):.2f} ms")
    async with db.read() as session:
        for q in QUERIES:

            async def run(q: str = q) -> tuple[object, int]:
                return await store.search(session, tenant, q, page=1, page_size=20)

            total = (await run())[1]
            print(f"  search {q!r:24} total {total:6}: {await _median_ms(run):7.2f} ms")
        for page in (1, 50):

            async def listing(page: int = page) -> object:
                return await store.list(session, tenant, page=page, page_size=20)

            print(f"  list page {page:<3}: {await _median_ms(listing):7.2f} ms")
    await db.dispose()


def main() -> None:
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(bench(url, count))


if __name__ == "__main__":
    main()
