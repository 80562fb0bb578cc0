"""How the auth backend is made from the kit: its ``BackendSpec`` (run by ``python -m backends.auth``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from backends.auth import models
from backends.auth.bootstrap import ensure_admin
from backends.auth.config import AuthSettings
from backends.auth.keys import KeyRing
from backends.auth.lockout import LoginThrottle
from backends.auth.metrics import AuthMetrics
from backends.auth.passwords import Passwords
from backends.auth.refresh_tokens import RefreshTokens
from backends.auth.revocations import RedisRefill, RevocationStore
from backends.auth.service import AuthDeps, AuthService
from backends.auth.store import CredentialStore
from backends.auth.user_events import UserEventHandlers
from meshkit.events.consumers import EventConsumer
from meshkit.events.outbox import Outbox
from meshkit.rpc.runtime import BackendSpec, EventSubscription, Runtime, Service, consume, open_outbox
from stubs.auth.v1 import auth_pb2, auth_pb2_grpc
from stubs.users.v1 import users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def refresh_tokens(settings: AuthSettings) -> RefreshTokens:
    """The refresh-token lifetimes the settings name."""
    return RefreshTokens(
        idle=timedelta(seconds=settings.refresh_idle_seconds),
        absolute=timedelta(seconds=settings.refresh_absolute_seconds),
        reuse_grace=timedelta(seconds=settings.refresh_reuse_grace_seconds),
    )


def revocation_store(settings: AuthSettings, outbox: Outbox) -> RevocationStore:
    """Revocations kept as long as an access token the settings issue can live (plus the leeway)."""
    return RevocationStore(outbox, settings.access_token_ttl + settings.jwt_leeway + 5)


def auth_deps(runtime: Runtime[AuthSettings]) -> AuthDeps:
    """What the servicer works with, opened on the runtime's shared resources."""
    settings, db = runtime.settings, runtime.database
    outbox = open_outbox(runtime, models.outbox)
    runtime.run_in_background(RedisRefill(db, runtime.redis, runtime.registry).run)
    passphrase = settings.keys_passphrase.get_secret_value().encode() if settings.keys_passphrase else None
    passwords = Passwords(
        memory_cost=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers or None,
    )

    async def close_passwords() -> None:
        passwords.close()  # queued hashes of calls that were cancelled are dropped, not run

    runtime.on_shutdown(close_passwords)
    return AuthDeps(
        settings=settings,
        db=db,
        credentials=CredentialStore(db.dialect),
        refresh=refresh_tokens(settings),
        passwords=passwords,
        throttle=LoginThrottle(
            runtime.redis,
            account_limit=settings.login_account_limit,
            ip_limit=settings.login_ip_limit,
            window_seconds=settings.login_window_seconds,
            base_lockout_seconds=settings.login_lockout_seconds,
            registry=runtime.registry,
        ),
        keys=KeyRing.load_or_create(settings.keys_dir, passphrase, datetime.now(UTC)),
        outbox=outbox,
        redis=runtime.redis,
        users=users_pb2_grpc.UserServiceStub(runtime.channel(settings.users_target)),
        revocations=revocation_store(settings, outbox),
        published=runtime.revocations.local,
        metrics=AuthMetrics(runtime.registry),
    )


def services(runtime: Runtime[AuthSettings]) -> Sequence[Service]:
    deps = auth_deps(runtime)
    servicer = AuthService(deps)
    admin_password = runtime.settings.admin_password
    if admin_password is not None:
        runtime.run_in_background(partial(ensure_admin, servicer, deps, admin_password.get_secret_value()))
    return [
        Service.of(
            auth_pb2.DESCRIPTOR, "AuthService", servicer, auth_pb2_grpc.add_AuthServiceServicer_to_server
        )
    ]


def consumers(runtime: Runtime[AuthSettings]) -> Sequence[EventConsumer]:
    settings = runtime.settings
    # The relay that open_outbox started in services() publishes these rows too.
    outbox = Outbox(models.outbox)
    handlers = UserEventHandlers(
        CredentialStore(runtime.database.dialect),
        refresh_tokens(settings),
        revocation_store(settings, outbox),
        runtime.redis,
    )
    return [
        consume(
            runtime,
            EventSubscription(
                runtime.settings.users_topic,
                {"user.updated": handlers.on_user_updated, "user.deleted": handlers.on_user_deleted},
                models.processed_events,
                settings.consumer_group,
            ),
        )
    ]


SPEC = BackendSpec("auth", AuthSettings, services, consumers, migrations=MIGRATIONS)
