"""How the posts backend is made from the kit: its ``BackendSpec`` (run by ``python -m backends.posts``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from backends.posts import models
from backends.posts.authors import AuthorCheck
from backends.posts.blobs import open_blob_store
from backends.posts.config import PostsSettings
from backends.posts.image_refs import ImageRefs
from backends.posts.orphans import OrphanSweeper
from backends.posts.service import PostsDeps, PostService
from backends.posts.store import PostStore
from backends.posts.user_events import UserEventHandlers
from meshkit.events.consumers import EventConsumer
from meshkit.rpc.runtime import BackendSpec, EventSubscription, Runtime, Service, consume, open_outbox
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc
from stubs.users.v1 import users_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


def posts_deps(runtime: Runtime[PostsSettings]) -> PostsDeps:
    """What the servicer works with; the image store's orphans are swept in the background."""
    settings, db = runtime.settings, runtime.database
    blobs = open_blob_store(settings.blob_store_url)
    runtime.on_shutdown(blobs.close)
    # Not a health dependency: with the image store away, posts without images still work, and every
    # image call answers UNAVAILABLE on its own.
    refs = ImageRefs(db, blobs)
    sweeper = OrphanSweeper(
        blobs,
        refs,
        runtime.registry,
        grace=timedelta(seconds=settings.orphan_grace_seconds),
        interval=settings.orphan_sweep_seconds,
    )
    runtime.run_in_background(sweeper.run)
    users = users_pb2_grpc.UserServiceStub(runtime.channel(settings.users_target))
    return PostsDeps(
        db=db,
        store=PostStore(db.dialect),
        blobs=blobs,
        refs=refs,
        outbox=open_outbox(runtime, models.outbox),
        authors=AuthorCheck(users, settings.users_timeout, settings.forwarding_secret),
        max_image_bytes=settings.max_image_bytes,
        max_image_pixels=settings.max_image_pixels,
    )


def services(runtime: Runtime[PostsSettings]) -> Sequence[Service]:
    servicer = PostService(posts_deps(runtime))
    return [
        Service.of(
            posts_pb2.DESCRIPTOR, "PostService", servicer, posts_pb2_grpc.add_PostServiceServicer_to_server
        )
    ]


def consumers(runtime: Runtime[PostsSettings]) -> Sequence[EventConsumer]:
    handlers = UserEventHandlers(PostStore(runtime.database.dialect))
    return [
        consume(
            runtime,
            EventSubscription(
                runtime.settings.users_topic,
                {"user.deleted": handlers.on_user_deleted},
                models.processed_events,
                runtime.settings.consumer_group,
            ),
        )
    ]


SPEC = BackendSpec("posts", PostsSettings, services, consumers, migrations=MIGRATIONS)
