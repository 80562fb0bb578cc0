"""``python -m backends.auth``: serve ``auth.v1.AuthService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import MetaData

from backends.auth.bootstrap import ensure_admin
from backends.auth.config import AuthSettings
from backends.auth.events import USERS_TOPIC
from backends.auth.keys import KeyRing
from backends.auth.lockout import LoginThrottle
from backends.auth.metrics import AuthMetrics
from backends.auth.passwords import Passwords
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.service import AuthDeps, AuthService
from backends.auth.store import CredentialStore
from backends.auth.user_events import UserEventHandlers
from meshkit.events.lag import watch_consumer_lag
from meshkit.events.tables import outbox_table, processed_events_table
from meshkit.rpc.server import BackendSpec, Runtime, Service, run_backend
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.users.v1 import users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def services(runtime: Runtime) -> Sequence[Service]:
    settings = runtime.settings
    assert isinstance(settings, AuthSettings)
    assert runtime.db is not None
    passphrase = settings.keys_passphrase.get_secret_value().encode() if settings.keys_passphrase else None
    tables = MetaData()
    refresh = RefreshTokens(
        idle=timedelta(seconds=settings.refresh_idle_seconds),
        absolute=timedelta(seconds=settings.refresh_absolute_seconds),
        reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
    )
    credentials = CredentialStore(runtime.db.dialect)
    deps = AuthDeps(
        settings=settings,
        db=runtime.db,
        credentials=credentials,
        refresh=refresh,
        passwords=Passwords(
            memory_cost=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
            workers=settings.hash_workers or None,
        ),
        throttle=LoginThrottle(
            runtime.redis,
            account_limit=settings.login_account_limit,
            ip_limit=settings.login_ip_limit,
            window_seconds=settings.login_window_seconds,
            base_lockout_seconds=settings.login_lockout_seconds,
            registry=runtime.registry,
        ),
        keys=KeyRing.load_or_create(settings.keys_dir, passphrase, datetime.now(UTC)),
        outbox=runtime.outbox(outbox_table(tables, "auth")),
        redis=runtime.redis,
        users=users_pb2_grpc.UserServiceStub(runtime.channel(settings.users_target)),
        metrics=AuthMetrics(runtime.registry),
    )
    service = AuthService(deps)
    handlers = UserEventHandlers(credentials, refresh, runtime.redis)
    consumer = runtime.event_consumer(processed_events_table(tables, "auth"), settings.consumer_group)
    consumer.subscribe(
        runtime.broker,
        USERS_TOPIC,
        {"user.updated": handlers.on_user_updated, "user.deleted": handlers.on_user_deleted},
    )
    watch_consumer_lag(runtime, consumer)
    if settings.admin_password is not None:
        runtime.run_in_background(
            partial(ensure_admin, service, deps, settings.admin_password.get_secret_value())
        )
    return [
        Service.of(
            auth_pb2.DESCRIPTOR, "AuthService", service, auth_pb2_grpc.add_AuthServiceServicer_to_server
        )
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("auth", AuthSettings(), services, migrations=MIGRATIONS))
