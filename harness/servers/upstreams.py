"""Purpose-built gRPC upstreams for the gateway's upload, stream and retry paths, until the real posts
and broker backends exist. A grpc.aio server (with reflection) hosting ``posts.v1.PostService`` and
``broker.v1.MessageService``; it records what it received so tests can look.

PostService:
- CreatePost / UpdatePost echo title and content and record the request (image bytes and type).
- GetPost with ``post_id`` ``flaky-N`` fails the first N calls with UNAVAILABLE, ``down`` always does;
  UpdatePost on ``flaky-N`` likewise (a write: the gateway must not retry it). Calls are counted per id.

MessageService.SubscribeToTopic by topic:
- ``invalid`` → INVALID_ARGUMENT and ``down`` → UNAVAILABLE at once (before any message);
- ``breaks`` → two messages, then UNAVAILABLE;
- ``quiet`` → accepts and sends nothing; ``silent`` the same without even its initial metadata;
- anything else → three messages (offsets 0, 1, 2), then waits until the client goes away.
Accepted streams (but ``silent``) send their initial metadata at once, as a real backend should.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_reflection.v1alpha import reflection

from infra.procs import free_port
from meshkit.rpc.context import Context
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc
from stubs.posts.v1 import posts_pb2, posts_pb2_grpc


@dataclass
class Record:
    created: list[posts_pb2.CreatePostRequest] = field(default_factory=list)
    updated: list[posts_pb2.UpdatePostRequest] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)  # "GetPost:flaky-2" → number of calls
    metadata: list[dict[str, str]] = field(default_factory=list)
    active_streams: int = 0
    cancelled_streams: int = 0


def _post(post_id: str, title: str, content: str) -> posts_pb2.Post:
    return posts_pb2.Post(id=post_id, tenant_id="default", author_id="u-1", title=title, content=content)


async def _flaky(record: Record, method: str, post_id: str, context: Context) -> None:
    record.calls[f"{method}:{post_id}"] += 1
    failing = post_id == "down" or (
        post_id.startswith("flaky-") and record.calls[f"{method}:{post_id}"] <= int(post_id.split("-")[1])
    )
    if failing:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "backend restarting")


class Posts(posts_pb2_grpc.PostServiceServicer):
    def __init__(self, record: Record) -> None:
        self.record = record

    async def CreatePost(
        self, request: posts_pb2.CreatePostRequest, context: Context
    ) -> posts_pb2.CreatePostResponse:
        self.record.created.append(request)
        self.record.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        return posts_pb2.CreatePostResponse(post=_post("p-1", request.title, request.content))

    async def UpdatePost(
        self, request: posts_pb2.UpdatePostRequest, context: Context
    ) -> posts_pb2.UpdatePostResponse:
        await _flaky(self.record, "UpdatePost", request.post_id, context)
        self.record.updated.append(request)
        return posts_pb2.UpdatePostResponse(post=_post(request.post_id, request.title, request.content))

    async def GetPost(self, request: posts_pb2.GetPostRequest, context: Context) -> posts_pb2.GetPostResponse:
        await _flaky(self.record, "GetPost", request.post_id, context)
        return posts_pb2.GetPostResponse(post=_post(request.post_id, "t", "c"))


class Messages(broker_pb2_grpc.MessageServiceServicer):
    def __init__(self, record: Record) -> None:
        self.record = record

    async def SubscribeToTopic(
        self, request: broker_pb2.SubscribeToTopicRequest, context: Context
    ) -> AsyncIterator[broker_pb2.SubscribeToTopicResponse]:
        self.record.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})
        if request.topic == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "topic name is not valid")
        if request.topic == "down":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "kafka unreachable")
        if request.topic != "silent":  # "silent" accepts without saying so, like a careless backend
            await context.send_initial_metadata(())
        self.record.active_streams += 1
        try:
            count = 0 if request.topic in ("quiet", "silent") else 2 if request.topic == "breaks" else 3
            for offset in range(count):
                stamp = Timestamp()
                stamp.FromSeconds(1_700_000_000 + offset)
                yield broker_pb2.SubscribeToTopicResponse(
                    topic=request.topic,
                    partition=0,
                    offset=offset,
                    key=f"k{offset}",
                    message=f"{request.last_event_id or getattr(request, 'from') or 'latest'} #{offset}",
                    timestamp=stamp,
                    cursor=f"0:{offset}",
                )
            if request.topic == "breaks":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "kafka went away")
            await asyncio.Event().wait()  # a live subscription: until the client leaves
        except asyncio.CancelledError:
            self.record.cancelled_streams += 1
            raise
        finally:
            self.record.active_streams -= 1


@dataclass
class FakeUpstreams:
    server: grpc.aio.Server
    target: str
    record: Record


async def start_fake_upstreams() -> FakeUpstreams:
    record = Record()
    server = grpc.aio.server()
    # Only the RPCs under test are implemented; the rest stay the generated UNIMPLEMENTED ones.
    posts_pb2_grpc.add_PostServiceServicer_to_server(Posts(record), server)  # type: ignore[abstract]
    broker_pb2_grpc.add_MessageServiceServicer_to_server(Messages(record), server)  # type: ignore[abstract]
    names = (
        posts_pb2.DESCRIPTOR.services_by_name["PostService"].full_name,
        broker_pb2.DESCRIPTOR.services_by_name["MessageService"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return FakeUpstreams(server, f"127.0.0.1:{port}", record)
