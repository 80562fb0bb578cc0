"""What a backend declares (``BackendSpec``) and is given (``Runtime``): typed settings, the database,
outboxes and event consumers, and the four backends declaring themselves the same way."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from sqlalchemy import MetaData

from backends.auth import models as auth_models
from backends.auth.config import AuthSettings
from backends.broker.config import BrokerSettings
from backends.posts import models as posts_models
from backends.posts.config import PostsSettings
from backends.users import models as users_models
from backends.users.config import UsersSettings
from meshkit.auth.revocation import RevocationChecker
from meshkit.config.serve import BackendSettings
from meshkit.db.database import Database
from meshkit.db.migrations import upgrade
from meshkit.events.broker import build_broker
from meshkit.events.tables import outbox_table, processed_events_table
from meshkit.rpc.runtime import (
    BackendSpec,
    EventSubscription,
    NoDatabase,
    Runtime,
    consume,
    no_consumers,
    open_outbox,
)
from observability.telemetry import Telemetry

UNREACHABLE_KAFKA = "127.0.0.1:1"  # nothing here connects: the broker is only built, never started


def make_runtime(
    settings: BackendSettings, db: Database | None = None, *, broker: bool = True
) -> Runtime[Any]:
    """A runtime on ``settings``; with ``broker`` its Kafka broker is built up front on an unreachable
    address, else the first use of ``runtime.broker`` builds it from the settings."""
    registry = CollectorRegistry()
    redis = Redis.from_url("redis://127.0.0.1:1/0")
    errors = Counter("test_revocation_errors", "unused", registry=registry)
    return Runtime(
        name="test",
        settings=settings,
        telemetry=Telemetry(service="portico-test", tracer_provider=TracerProvider()),
        registry=registry,
        redis=redis,
        revocations=RevocationChecker(redis, fail_open=True, errors=errors),
        db=db,
        event_broker=(
            build_broker(UNREACHABLE_KAFKA, service="test", tracer_provider=None, registry=registry)
            if broker
            else None
        ),
    )


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'runtime.db'}")
    yield database
    await database.dispose()


def test_a_runtime_without_a_database_says_so() -> None:
    runtime = make_runtime(UsersSettings())
    with pytest.raises(NoDatabase, match="no database"):
        _ = runtime.database
    with pytest.raises(NoDatabase):
        open_outbox(runtime, outbox_table(MetaData(), "test"))


async def test_outbox_runs_its_relay_and_retention(db: Database) -> None:
    runtime = make_runtime(UsersSettings(), db)
    assert runtime.database is db
    outbox = open_outbox(runtime, users_models.outbox)
    assert outbox.table is users_models.outbox
    assert len(runtime.background) == 2  # the relay and the published rows' retention


async def test_consume_subscribes_before_the_broker_starts_and_watches_lag(db: Database) -> None:
    runtime = make_runtime(PostsSettings(), db)

    async def ignore(*_: object) -> None: ...

    consumer = consume(
        runtime,
        EventSubscription("portico.users.v1", {"user.deleted": ignore}, posts_models.processed_events, "g-1"),
    )
    assert (consumer.group_id, consumer.topics) == ("g-1", ["portico.users.v1"])
    assert len(runtime.broker.subscribers) == 1
    assert len(runtime.background) == 2  # the applied events' retention and the lag monitor


def main_of(backend: str) -> ModuleType:
    return importlib.import_module(f"backends.{backend}.wiring")


@pytest.mark.parametrize(
    ("backend", "settings", "has_database"),
    [
        ("users", UsersSettings, True),
        ("auth", AuthSettings, True),
        ("posts", PostsSettings, True),
        ("broker", BrokerSettings, False),
    ],
)
def test_every_backend_declares_one_spec(backend: str, settings: type, has_database: bool) -> None:
    spec = main_of(backend).SPEC
    assert isinstance(spec, BackendSpec)
    assert (spec.name, spec.settings) == (backend, settings)
    assert (spec.migrations is not None) == has_database
    if spec.migrations is not None:
        assert (spec.migrations / "env.py").is_file()


@pytest.mark.parametrize("backend", ["users", "broker"])
def test_backends_without_consumers_declare_none(backend: str) -> None:
    assert main_of(backend).SPEC.consumers is no_consumers
    assert tuple(no_consumers(make_runtime(UsersSettings()))) == ()


@pytest.mark.parametrize(
    ("backend", "models", "settings", "types"),
    [
        ("auth", auth_models, AuthSettings, {"user.updated", "user.deleted"}),
        ("posts", posts_models, PostsSettings, {"user.deleted"}),
    ],
)
async def test_consumers_use_the_tables_of_models(
    backend: str,
    models: ModuleType,
    settings: Callable[[], BackendSettings],
    types: set[str],
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = make_runtime(settings(), db)
    subscribed: list[EventSubscription] = []
    monkeypatch.setattr(main_of(backend), "consume", lambda _runtime, sub: subscribed.append(sub))
    main_of(backend).SPEC.consumers(runtime)
    (subscription,) = subscribed
    assert subscription.topic == "portico.users.v1"
    assert set(subscription.handlers) == types
    assert subscription.group_id == runtime.settings.consumer_group
    # The backend's own table on its own MetaData, the one its migrations and models describe.
    assert subscription.processed is models.processed_events
    assert subscription.processed.metadata is models.metadata


def test_the_models_tables_are_the_kit_tables() -> None:
    for prefix, models in (("users", users_models), ("auth", auth_models), ("posts", posts_models)):
        fresh = MetaData()
        for table, kit in (
            (models.outbox, outbox_table(fresh, prefix)),
            (models.processed_events, processed_events_table(fresh, prefix)),
        ):
            assert table.metadata is models.metadata
            assert (table.name, [c.name for c in table.columns]) == (kit.name, [c.name for c in kit.columns])


async def test_users_services_build_on_the_runtime(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'users.db'}"
    spec = main_of("users").SPEC
    assert spec.migrations is not None
    await upgrade(url, spec.migrations, "users_alembic_version")
    database = Database(url)
    try:
        runtime = make_runtime(UsersSettings(), database)
        (service,) = spec.services(runtime)
        assert service.full_name == "users.v1.UserService"
        assert len(runtime.background) == 2  # its outbox's relay and retention
    finally:
        await database.dispose()


def test_the_kafka_broker_is_built_on_first_use_and_never_after_the_declarations() -> None:
    runtime = make_runtime(UsersSettings(), broker=False)
    assert runtime.event_broker is None
    built = runtime.broker
    assert runtime.broker is built is runtime.event_broker
    late = make_runtime(UsersSettings(), broker=False)
    late.declared = True  # the kit set it: a broker built now would never be started
    with pytest.raises(RuntimeError, match="while declaring"):
        late.broker  # noqa: B018


def test_the_broker_backend_declares_its_service_without_a_kafka_broker() -> None:
    # It publishes and reads with its own Kafka clients: FastStream is never built (nor imported) there.
    runtime = make_runtime(BrokerSettings(), broker=False)
    (service,) = main_of("broker").SPEC.services(runtime)
    assert service.full_name == "broker.v1.MessageService"
    assert runtime.event_broker is None
