"""A warm GetUser is one Redis round trip from the users backend: the token's revocation marks and the
cache entry in one MGET (meshkit.auth.prefetch), the token verified from the in-process cache, and no read
of the caller's profile. Counted on the real Redis with MONITOR, from the backend's own connections."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import jwt
import pytest
from redis import Redis

from harness.infra import InfraEnv
from harness.processes import wait_until
from harness.users import UsersBackend
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra


@contextmanager
def commands_of(redis_url: str, ports: set[int]) -> Iterator[list[str]]:
    """The commands Redis receives from the local ``ports`` (PING, the health probe's, left out) while
    the block runs."""
    seen: list[tuple[int, str]] = []
    start, stop = f"start-{uuid.uuid4().hex}", f"stop-{uuid.uuid4().hex}"
    ready = threading.Event()
    monitor_client, control = Redis.from_url(redis_url), Redis.from_url(redis_url)

    def watch() -> None:
        with monitor_client.monitor() as monitor:
            while True:
                entry = monitor.next_command()
                command = str(entry["command"])
                if start in command:
                    ready.set()
                elif stop in command:
                    return
                elif entry["client_port"]:
                    seen.append((int(entry["client_port"]), command))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    wait_until(lambda: bool(control.echo(start)) and ready.is_set(), 10, "MONITOR started")
    found: list[str] = []
    try:
        yield found
    finally:
        control.echo(stop)
        watcher.join(10)
        found.extend(c for port, c in seen if port in ports and c.split()[0].upper() != "PING")
        control.close()
        monitor_client.close()


def test_a_warm_get_user_is_one_redis_round_trip(users_backend: UsersBackend, infra: InfraEnv) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    _, admin_token = users_backend.admin(tenant)
    other = users_backend.create_user(admin_token, email="rt-other@example.com", username="rt-other")
    me = users_backend.create_user(admin_token, email="rt-me@example.com", username="rt-me")
    token = users_backend.token(me)
    channel, stub = users_backend.stub()
    get = users_pb2.GetUserRequest(user_id=other["id"])
    metadata = users_backend.metadata(token)
    with channel:
        for _ in range(2):  # warm: the entry cached, the token verified once
            assert stub.GetUser(get, metadata=metadata, timeout=10).user.id == other["id"]
        redis_port = urlparse(infra.redis_url).port or 6379
        ports = users_backend.client_ports(redis_port)
        assert ports  # its pool is connected
        with commands_of(infra.redis_url, ports) as commands:
            assert stub.GetUser(get, metadata=metadata, timeout=10).user.id == other["id"]

    assert len(commands) == 1, commands
    (command,) = commands
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert command.split()[0].upper() == "MGET"
    assert f"portico:revoked:jti:{jti}" in command  # the revocation marks ...
    assert f"portico:users:v1:{{{tenant}:{other['id']}}}" in command  # ... and the entry, together
