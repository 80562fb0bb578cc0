"""posts.v1.PostService over real gRPC, against the real users backend, Kafka and Redis: every RPC,
the authorization matrix, image checks, blob replacement and cleanup, events and the user.deleted
cascade."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from aiokafka import AIOKafkaProducer
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from backends.posts.events import POSTS, USERS_TOPIC
from harness.images import image_bytes, large_png
from harness.infra import InfraEnv
from harness.kafka import read_topic
from harness.posts import PostsBackend, start_posts_backend
from harness.processes import wait_until
from harness.servers.s3 import s3_server
from harness.users import UsersBackend
from meshkit.events.envelope import CONTENT_TYPE
from meshkit.rpc.status import violations_of
from stubs.events.v1 import events_pb2
from stubs.posts.v1 import posts_pb2
from stubs.users.v1 import users_pb2

pytestmark = pytest.mark.infra
Code = grpc.StatusCode
MiB = 1024 * 1024


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def member(users: UsersBackend, tenant: str, name: str) -> tuple[dict[str, Any], str]:
    _, admin_token = users.admin(tenant)
    user = users.create_user(admin_token, email=f"{name}@example.com", username=name)
    return user, users.token(user)


def failure(posts: PostsBackend, method: str, request: Any, token: str | None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        posts.call(method, request, token)
    return err.value


def error_reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


def image_of(posts: PostsBackend, token: str, post_id: str) -> posts_pb2.GetPostImageResponse:
    reply = posts.call("GetPostImage", posts_pb2.GetPostImageRequest(post_id=post_id), token)
    assert isinstance(reply, posts_pb2.GetPostImageResponse)
    return reply


def listed(posts: PostsBackend, token: str, **fields: Any) -> posts_pb2.ListPostsResponse:
    reply = posts.call("ListPosts", posts_pb2.ListPostsRequest(**fields), token)
    assert isinstance(reply, posts_pb2.ListPostsResponse)
    return reply


# -- create, read, list ------------------------------------------------------------------------------


def test_a_post_without_an_image(posts_backend: PostsBackend, tenant: str) -> None:
    alice, token = member(posts_backend.users, tenant, "alice")
    post = posts_backend.create(token, title="  Hello  ", content="First\nline")
    assert (post.tenant_id, post.author_id, post.title, post.content) == (
        tenant,
        alice["id"],
        "Hello",
        "First\nline",
    )
    assert not post.HasField("image_url")
    assert post.created_at == post.updated_at
    got = posts_backend.call("GetPost", posts_pb2.GetPostRequest(post_id=post.id.upper()), token).post
    assert got == post
    missing = failure(posts_backend, "GetPostImage", posts_pb2.GetPostImageRequest(post_id=post.id), token)
    assert missing.code() == Code.NOT_FOUND


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "image/gif", "image/webp"])
def test_an_image_is_kept_by_content_and_served_with_a_strong_etag(
    posts_backend: PostsBackend, tenant: str, content_type: str
) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    data = image_bytes(content_type, seed=3)
    # The declared type is a lie: the content decides.
    post = posts_backend.create(token, title="pic", image=data, image_content_type="application/pdf")
    assert post.image_url == f"/api/v1/posts/{post.id}/image"
    image = image_of(posts_backend, token, post.id)
    assert (image.data, image.content_type) == (data, content_type)
    assert image.etag == hashlib.sha256(data).hexdigest()
    assert any(path.read_bytes() == data for path in posts_backend.blobs())


def test_lists_are_newest_first_with_totals_pages_and_an_author_filter(
    posts_backend: PostsBackend, tenant: str
) -> None:
    alice, alice_token = member(posts_backend.users, tenant, "alice")
    _, bob_token = member(posts_backend.users, tenant, "bob")
    for n in range(3):
        posts_backend.create(alice_token, title=f"a{n}")
    posts_backend.create(bob_token, title="b0")
    page = listed(posts_backend, bob_token)
    assert [p.title for p in page.posts] == ["b0", "a2", "a1", "a0"]
    assert (page.total, page.page, page.page_size) == (4, 1, 20)
    second = listed(posts_backend, bob_token, page=2, page_size=3)
    assert ([p.title for p in second.posts], second.total) == (["a0"], 4)
    by_alice = listed(posts_backend, bob_token, author_id=alice["id"].upper())
    assert ([p.title for p in by_alice.posts], by_alice.total) == (["a2", "a1", "a0"], 3)
    other_tenant_token = member(posts_backend.users, f"{tenant}-x", "carol")[1]
    assert listed(posts_backend, other_tenant_token).total == 0


def test_bad_fields_are_reported_each_by_name(posts_backend: PostsBackend, tenant: str) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    error = failure(
        posts_backend, "CreatePost", posts_pb2.CreatePostRequest(title=" ", content="x" * 10_001), token
    )
    assert error.code() == Code.INVALID_ARGUMENT
    assert {field for field, _ in violations_of(error)} == {"title", "content"}
    error = failure(posts_backend, "CreatePost", posts_pb2.CreatePostRequest(title="t" * 201), token)
    assert [field for field, _ in violations_of(error)] == ["title"]
    error = failure(posts_backend, "CreatePost", posts_pb2.CreatePostRequest(title="bell\x07"), token)
    assert [field for field, _ in violations_of(error)] == ["title"]
    for request in (
        posts_pb2.ListPostsRequest(page_size=101),
        posts_pb2.ListPostsRequest(page=-1),
        posts_pb2.ListPostsRequest(author_id="nobody"),
    ):
        assert failure(posts_backend, "ListPosts", request, token).code() == Code.INVALID_ARGUMENT
    bad_id = failure(posts_backend, "GetPost", posts_pb2.GetPostRequest(post_id="../etc/passwd"), token)
    assert bad_id.code() == Code.INVALID_ARGUMENT
    unknown = failure(posts_backend, "GetPost", posts_pb2.GetPostRequest(post_id=str(uuid.uuid4())), token)
    assert unknown.code() == Code.NOT_FOUND


# -- images ------------------------------------------------------------------------------------------


def _truncated_png() -> bytes:
    return image_bytes("image/png", size=(64, 64), seed=5)[:-30]


def _png_with_zip() -> bytes:
    return image_bytes("image/png", seed=6) + b"PK\x03\x04" + b"\x00" * 26 + b"payload.html"


def _gif_with_script() -> bytes:
    return image_bytes("image/gif", seed=7) + b"*/=alert(document.domain);//"


@pytest.mark.parametrize(
    ("make", "reason", "code"),
    [
        (_truncated_png, "UNSUPPORTED_MEDIA_TYPE", Code.INVALID_ARGUMENT),
        (_png_with_zip, "UNSUPPORTED_MEDIA_TYPE", Code.INVALID_ARGUMENT),
        (_gif_with_script, "UNSUPPORTED_MEDIA_TYPE", Code.INVALID_ARGUMENT),
        (
            lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "UNSUPPORTED_MEDIA_TYPE",
            Code.INVALID_ARGUMENT,
        ),
        (lambda: b"%PDF-1.7\n" + b"0" * 100, "UNSUPPORTED_MEDIA_TYPE", Code.INVALID_ARGUMENT),
        (lambda: large_png(5 * MiB + 1), "PAYLOAD_TOO_LARGE", Code.RESOURCE_EXHAUSTED),
    ],
    ids=["truncated", "png+zip", "gif+script", "svg", "pdf", "oversized"],
)
def test_images_that_are_not_one_whole_small_picture_are_refused(
    posts_backend: PostsBackend, tenant: str, make: Any, reason: str, code: Code
) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    before = posts_backend.blobs()
    request = posts_pb2.CreatePostRequest(title="bad", image=make(), image_content_type="image/png")
    error = failure(posts_backend, "CreatePost", request, token)
    assert (error.code(), error_reason(error)) == (code, reason)
    assert [field for field, _ in violations_of(error)] == ["image"]
    assert posts_backend.blobs() == before
    assert listed(posts_backend, token).total == 0


def test_an_image_of_exactly_the_limit_is_accepted(posts_backend: PostsBackend, tenant: str) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    data = large_png(5 * MiB - 64 * 1024)
    assert len(data) <= 5 * MiB
    post = posts_backend.create(token, title="big", image=data)
    assert image_of(posts_backend, token, post.id).data == data


# -- updates, deletes and blob cleanup ------------------------------------------------------------------


def test_update_changes_only_what_is_given_and_a_new_image_replaces_the_old(
    posts_backend: PostsBackend, tenant: str
) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    first, second = image_bytes("image/png", seed=11), image_bytes("image/jpeg", seed=12)
    post = posts_backend.create(token, title="v1", content="body", image=first)
    same = posts_backend.call("UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id), token).post
    assert same == post  # nothing given, nothing changed
    retitled = posts_backend.call(
        "UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id, title="v2"), token
    ).post
    assert (retitled.title, retitled.content, retitled.image_url) == ("v2", "body", post.image_url)
    assert retitled.updated_at.ToDatetime() > post.updated_at.ToDatetime()
    posts_backend.call(
        "UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id, content="", image=second), token
    )
    image = image_of(posts_backend, token, post.id)
    assert (image.data, image.content_type) == (second, "image/jpeg")
    stored = [path.read_bytes() for path in posts_backend.blobs()]
    assert second in stored
    assert first not in stored
    bad = posts_pb2.UpdatePostRequest(post_id=post.id, title="", image=b"GIF89a broken")
    error = failure(posts_backend, "UpdatePost", bad, token)
    assert error.code() == Code.INVALID_ARGUMENT
    assert image_of(posts_backend, token, post.id).data == second


def test_a_shared_image_stays_until_its_last_post_is_deleted(
    posts_backend: PostsBackend, tenant: str
) -> None:
    _, token = member(posts_backend.users, tenant, "alice")
    data = image_bytes("image/webp", seed=21)
    one = posts_backend.create(token, title="one", image=data)
    two = posts_backend.create(token, title="two", image=data)
    assert [p.read_bytes() for p in posts_backend.blobs()].count(data) == 1  # stored once
    reply = posts_backend.call("DeletePost", posts_pb2.DeletePostRequest(post_id=one.id), token)
    assert reply.message == "Post deleted successfully"
    assert image_of(posts_backend, token, two.id).data == data
    posts_backend.call("DeletePost", posts_pb2.DeletePostRequest(post_id=two.id), token)
    assert data not in [p.read_bytes() for p in posts_backend.blobs()]
    gone = failure(posts_backend, "GetPost", posts_pb2.GetPostRequest(post_id=one.id), token)
    assert gone.code() == Code.NOT_FOUND
    again = failure(posts_backend, "DeletePost", posts_pb2.DeletePostRequest(post_id=one.id), token)
    assert again.code() == Code.NOT_FOUND


# -- authorization -----------------------------------------------------------------------------------


def test_only_the_author_or_an_admin_changes_a_post(posts_backend: PostsBackend, tenant: str) -> None:
    users = posts_backend.users
    _, alice = member(users, tenant, "alice")
    _, bob = member(users, tenant, "bob")
    _, admin = users.admin(tenant)
    _, stranger = member(users, f"{tenant}-other", "mallory")
    post = posts_backend.create(alice, title="alice's")

    def update(token: str) -> Code:
        try:
            posts_backend.call(
                "UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id, title="edited"), token
            )
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return Code.OK

    def delete(token: str) -> Code:
        try:
            posts_backend.call("DeletePost", posts_pb2.DeletePostRequest(post_id=post.id), token)
        except grpc.RpcError as exc:
            return exc.code()  # type: ignore[no-any-return]
        return Code.OK

    assert update(bob) == Code.PERMISSION_DENIED
    assert delete(bob) == Code.PERMISSION_DENIED
    assert update(stranger) == Code.NOT_FOUND  # another tenant's post does not exist for them
    assert delete(stranger) == Code.NOT_FOUND
    assert (
        posts_backend.call("GetPost", posts_pb2.GetPostRequest(post_id=post.id), bob).post.title == "alice's"
    )
    assert update(alice) == Code.OK
    assert update(admin) == Code.OK
    assert delete(admin) == Code.OK
    for method, request in (
        ("CreatePost", posts_pb2.CreatePostRequest(title="anon")),
        ("ListPosts", posts_pb2.ListPostsRequest()),
        ("GetPost", posts_pb2.GetPostRequest(post_id=post.id)),
    ):
        assert failure(posts_backend, method, request, None).code() == Code.UNAUTHENTICATED


def test_a_token_for_a_user_that_does_not_exist_cannot_write(
    posts_backend: PostsBackend, tenant: str
) -> None:
    users = posts_backend.users
    ghost = {"id": str(uuid.uuid4()), "tenant_id": tenant, "email": "ghost@example.com"}
    token = users.token(ghost)
    error = failure(posts_backend, "CreatePost", posts_pb2.CreatePostRequest(title="boo"), token)
    # users answers GetUser for a user it does not know with NOT_FOUND (it reads no caller profile to
    # authorize; only auth's key could sign such a token): posts' "unknown author" refusal.
    assert (error.code(), error.details()) == (Code.PERMISSION_DENIED, "Only existing users can write posts")
    assert listed(posts_backend, token).total == 0


def test_users_unreachable_is_unavailable_for_writes_and_reads_go_on(
    infra: InfraEnv, posts_backend: PostsBackend, tmp_path: Path, tenant: str
) -> None:
    users = posts_backend.users
    _, token = member(users, tenant, "alice")
    dead = dataclasses.replace(users, target="127.0.0.1:9", metrics_port=0, database_url="")
    cut_off = start_posts_backend(infra, dead, tmp_path, extra_env={"PORTICO_POSTS_USERS_TIMEOUT": "0.5"})
    try:
        error = failure(cut_off, "CreatePost", posts_pb2.CreatePostRequest(title="lonely"), token)
        assert (error.code(), error.details()) == (Code.UNAVAILABLE, "The user service is unavailable")
        assert listed(cut_off, token).total == 0
    finally:
        cut_off.proc.terminate()


async def publish_again(bootstrap: str, topic: str, key: str, event: events_pb2.Event) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        headers = [("content-type", CONTENT_TYPE.encode()), ("event-type", event.type.encode())]
        await producer.send_and_wait(topic, event.SerializeToString(), key=key.encode(), headers=headers)
    finally:
        await producer.stop()


# -- events ------------------------------------------------------------------------------------------


def test_every_change_is_an_event_on_the_posts_topic(
    posts_backend: PostsBackend, infra: InfraEnv, tenant: str
) -> None:
    alice, token = member(posts_backend.users, tenant, "alice")
    post = posts_backend.create(token, title="evented", image=image_bytes("image/gif", seed=31))
    posts_backend.call("UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id, title="renamed"), token)
    posts_backend.call("DeletePost", posts_pb2.DeletePostRequest(post_id=post.id), token)
    events: list[events_pb2.Event] = asyncio.run(
        read_topic(infra.kafka_bootstrap, POSTS.topic, lambda e: e.entity_id == post.id, want=3)
    )
    assert [e.type for e in events] == ["post.created", "post.updated", "post.deleted"]
    assert {e.tenant_id for e in events} == {tenant}
    assert {e.actor.user_id for e in events} == {alice["id"]}
    assert [e.post.title for e in events] == ["evented", "renamed", "renamed"]
    assert events[0].post.image_url == post.image_url


def test_a_deleted_user_s_posts_disappear_once_and_stay_stored(
    posts_backend: PostsBackend, tenant: str, infra: InfraEnv
) -> None:
    users = posts_backend.users
    alice, alice_token = member(users, tenant, "alice")
    _, bob_token = member(users, tenant, "bob")
    _, admin_token = users.admin(tenant)
    kept = posts_backend.create(bob_token, title="bob's")
    doomed = [
        posts_backend.create(alice_token, title=f"alice {n}", image=image_bytes(seed=40 + n))
        for n in range(2)
    ]
    before = posts_backend.blobs()
    channel, stub = users.stub()
    with channel:
        stub.DeleteUser(
            users_pb2.DeleteUserRequest(user_id=alice["id"]), metadata=users.metadata(admin_token), timeout=10
        )

    def hidden() -> bool:
        return [p.id for p in listed(posts_backend, bob_token).posts] == [kept.id]

    wait_until(hidden, 30, "the user.deleted event to hide alice's posts")
    for post in doomed:
        error = failure(posts_backend, "GetPost", posts_pb2.GetPostRequest(post_id=post.id), bob_token)
        assert error.code() == Code.NOT_FOUND
    assert listed(posts_backend, bob_token, author_id=alice["id"]).total == 0
    assert posts_backend.blobs() == before  # kept for audit
    # At-least-once delivery may bring the event again: nothing changes and it counts as a duplicate.
    (deleted,) = asyncio.run(
        read_topic(
            infra.kafka_bootstrap,
            USERS_TOPIC,
            lambda e: e.entity_id == alice["id"] and e.type == "user.deleted",
            want=1,
        )
    )
    duplicates = {"group": posts_backend.consumer_group, "topic": USERS_TOPIC, "outcome": "duplicate"}
    before_count = posts_backend.metric("portico_events_consumed_total", duplicates)
    asyncio.run(publish_again(infra.kafka_bootstrap, USERS_TOPIC, alice["id"], deleted))
    wait_until(
        lambda: posts_backend.metric("portico_events_consumed_total", duplicates) == before_count + 1,
        30,
        "the redelivered user.deleted to count as a duplicate",
    )
    assert [p.id for p in listed(posts_backend, bob_token).posts] == [kept.id]


# -- an S3-compatible image store ----------------------------------------------------------------------


def test_images_in_an_s3_store_are_replaced_and_removed_and_an_outage_is_unavailable(
    infra: InfraEnv, posts_backend: PostsBackend, tmp_path: Path, tenant: str
) -> None:
    """The backend process against a real S3-compatible HTTP server (moto's), by URL."""
    credentials = {"AWS_ACCESS_KEY_ID": "portico-test", "AWS_SECRET_ACCESS_KEY": "portico-test-secret"}
    _, token = member(posts_backend.users, tenant, "alice")
    first, second = image_bytes("image/png", seed=51), image_bytes("image/jpeg", seed=52)
    with s3_server() as endpoint:
        bucket = boto3.session.Session(**_session(credentials)).client(
            "s3", endpoint_url=endpoint, region_name="us-east-1"
        )
        # moto keeps its buckets per process, not per server: a bucket of this test's own.
        name = f"portico-images-{uuid.uuid4().hex[:8]}"
        bucket.create_bucket(Bucket=name)

        def objects() -> list[bytes]:
            listed = bucket.list_objects_v2(Bucket=name, Prefix="posts/").get("Contents", [])
            return [bucket.get_object(Bucket=name, Key=o["Key"])["Body"].read() for o in listed]

        s3_posts = start_posts_backend(
            infra,
            posts_backend.users,
            tmp_path,
            blob_store_url=f"s3://{name}/posts?endpoint_url={endpoint}&region=us-east-1",
            extra_env=credentials,
        )
        try:
            post = s3_posts.create(token, title="in s3", image=first)
            assert objects() == [first]
            assert image_of(s3_posts, token, post.id).data == first
            s3_posts.call("UpdatePost", posts_pb2.UpdatePostRequest(post_id=post.id, image=second), token)
            assert objects() == [second]  # the replaced image left the bucket
            assert image_of(s3_posts, token, post.id).content_type == "image/jpeg"
            s3_posts.call("DeletePost", posts_pb2.DeletePostRequest(post_id=post.id), token)
            assert objects() == []
            kept = s3_posts.create(token, title="before the outage", image=first)
        except BaseException:
            s3_posts.proc.terminate()
            raise
    try:  # the S3 server is gone
        error = failure(s3_posts, "CreatePost", posts_pb2.CreatePostRequest(title="x", image=second), token)
        assert (error.code(), error.details()) == (Code.UNAVAILABLE, "The image store is unavailable")
        error = failure(s3_posts, "GetPostImage", posts_pb2.GetPostImageRequest(post_id=kept.id), token)
        assert error.code() == Code.UNAVAILABLE
        # Posts without images carry on.
        assert s3_posts.create(token, title="text still works").title == "text still works"
        assert listed(s3_posts, token).total >= 2
    finally:
        s3_posts.proc.terminate()


def _session(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
    }
