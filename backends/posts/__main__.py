"""``python -m backends.posts``: serve ``posts.v1.PostService`` until SIGTERM."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from backends.posts import models
from backends.posts.authors import AuthorCheck
from backends.posts.blobs import open_blob_store
from backends.posts.config import PostsSettings
from backends.posts.events import USERS_TOPIC
from backends.posts.image_refs import ImageRefs
from backends.posts.orphans import OrphanSweeper
from backends.posts.service import PostService
from backends.posts.store import PostStore
from backends.posts.user_events import UserEventHandlers
from meshkit.events.lag import watch_consumer_lag
from meshkit.rpc.server import BackendSpec, Runtime, Service, run_backend
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc
from stubs.users.v1 import users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def services(runtime: Runtime) -> Sequence[Service]:
    settings = runtime.settings
    assert isinstance(settings, PostsSettings)
    assert runtime.db is not None
    store = PostStore(runtime.db.dialect)
    blobs = open_blob_store(settings.blob_store_url)
    runtime.on_shutdown(blobs.close)
    # Not a health dependency: with the image store away, posts without images still work, and every
    # image call answers UNAVAILABLE on its own.
    users = users_pb2_grpc.UserServiceStub(runtime.channel(settings.users_target))
    servicer = PostService(
        runtime.db,
        store,
        blobs,
        runtime.outbox(models.outbox),
        AuthorCheck(users, settings.users_timeout),
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
    )
    sweeper = OrphanSweeper(
        blobs,
        ImageRefs(runtime.db, blobs),
        runtime.registry,
        grace=timedelta(seconds=settings.orphan_grace_seconds),
        interval=settings.orphan_sweep_seconds,
    )
    runtime.run_in_background(sweeper.run)
    handlers = UserEventHandlers(store)
    consumer = runtime.event_consumer(models.processed_events, settings.consumer_group)
    consumer.subscribe(runtime.broker, USERS_TOPIC, {"user.deleted": handlers.on_user_deleted})
    watch_consumer_lag(runtime, consumer)
    return [
        Service.of(
            posts_pb2.DESCRIPTOR, "PostService", servicer, posts_pb2_grpc.add_PostServiceServicer_to_server
        )
    ]


if __name__ == "__main__":
    run_backend(BackendSpec("posts", PostsSettings(), services, migrations=MIGRATIONS))
