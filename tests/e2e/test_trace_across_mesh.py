"""One trace from a REST request through the gateway, the gRPC calls, the outbox relay's publish and the
consumers in other backends, exported by the real processes over OTLP to a receiver the test runs."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from harness.accounts import registered, registration
from harness.infra import InfraEnv
from harness.mesh import Mesh, start_mesh
from harness.processes import json_lines
from harness.servers.otlp import ReceivedSpan, Receiver, otlp_receiver

pytestmark = pytest.mark.infra
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # opentelemetry.proto.trace.v1.Span.SpanKind


@pytest.fixture(scope="module")
def traced(infra: InfraEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mesh, Receiver]]:
    """A mesh of its own exporting every span: own SQLite databases (no other relay publishes its events)
    and own consumer groups (no other mesh takes its partitions)."""
    with otlp_receiver() as (endpoint, receiver):
        suffix = secrets.token_hex(4)
        env = {
            **infra.env(),
            "PORTICO_DATABASE_URL": "",
            "PORTICO_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
            "PORTICO_AUTH_CONSUMER_GROUP": f"portico-auth-{suffix}",
            "PORTICO_POSTS_CONSUMER_GROUP": f"portico-posts-{suffix}",
        }
        mesh = start_mesh(env, tmp_path_factory.mktemp("traced-mesh"))
        try:
            yield mesh, receiver
        finally:
            mesh.stop()


def wait_for_spans(receiver: Receiver, trace_id: str, wanted: int, timeout: float = 30) -> list[ReceivedSpan]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = receiver.trace(trace_id)
        if len(spans) >= wanted and _settled(receiver, trace_id, len(spans)):
            return spans
        time.sleep(0.2)
    return receiver.trace(trace_id)


def _settled(receiver: Receiver, trace_id: str, count: int) -> bool:
    time.sleep(0.5)  # late exporters (another process's batch) get one more chance
    return len(receiver.trace(trace_id)) == count


def one(spans: list[ReceivedSpan], **where: object) -> ReceivedSpan:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in where.items())]
    assert len(found) == 1, (where, [(s.service, s.name, s.kind) for s in spans])
    return found[0]


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        chain.append(span)
    return chain


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def test_one_trace_runs_from_the_rest_call_through_kafka_into_other_backends(
    traced: tuple[Mesh, Receiver],
) -> None:
    mesh, receiver = traced
    tenant = f"trace-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as client:
        register_trace, header = traceparent()
        data = registered(
            client.post("/api/v1/auth/register", json=registration(tenant), headers={"traceparent": header})
        )
        user_id, token = data["user"]["id"], data["access_token"]

        delete_trace, header = traceparent()
        deleted = client.delete(
            f"/api/v1/users/{user_id}", headers={"Authorization": f"Bearer {token}", "traceparent": header}
        )
        assert deleted.status_code == 200, deleted.text

    # Register: gateway → auth → (gRPC client) → users, then user.created through Kafka.
    spans = wait_for_spans(receiver, register_trace, wanted=6)
    gateway = one(spans, service="portico-gateway", kind=SERVER)
    auth = one(spans, service="portico-auth", kind=SERVER, name="/auth.v1.AuthService/Register")
    assert auth.parent_span_id == gateway.span_id
    call = one(spans, service="portico-auth", kind=CLIENT, name="/users.v1.UserService/CreateUser")
    users = one(spans, service="portico-users", kind=SERVER, name="/users.v1.UserService/CreateUser")
    assert users.parent_span_id == call.span_id
    assert auth in ancestors(call, spans)

    # Delete: gateway → users → outbox relay → Kafka → the auth and posts consumers.
    spans = wait_for_spans(receiver, delete_trace, wanted=8)
    gateway = one(spans, service="portico-gateway", kind=SERVER)
    users = one(spans, service="portico-users", kind=SERVER, name="/users.v1.UserService/DeleteUser")
    assert users.parent_span_id == gateway.span_id
    relay = one(spans, service="portico-users", kind=PRODUCER, name="portico.users.v1 send")
    assert users in ancestors(relay, spans)  # the relay continued the request's trace from the outbox row
    assert relay.attributes["messaging.destination.name"] == "portico.users.v1"
    for consumer_service in ("portico-posts", "portico-auth"):
        applied = one(spans, service=consumer_service, name="apply user.deleted")
        process = next(s for s in ancestors(applied, spans) if s.kind == CONSUMER)
        assert process.service == consumer_service
        chain = ancestors(process, spans)
        # Parent-child across Kafka, back to the REST call.
        assert relay in chain
        assert gateway in chain
        producing = next(s for s in spans if s.span_id == process.parent_span_id)
        assert producing.service == "portico-users"
        # Besides the parent chain, the apply span links to the span that produced the record.
        assert applied.links == ((delete_trace, producing.span_id),)
        assert applied.attributes["portico.event.outcome"] == "applied"
        # What the handler logged carries the trace of the REST call and its own span.
        logged = [
            json_line
            for json_line in json_lines(mesh.procs[consumer_service.removeprefix("portico-")])
            if json_line.get("trace_id") == delete_trace
        ]
        assert logged, f"{consumer_service} logged nothing in the trace"
        assert {line["span_id"] for line in logged} <= {applied.span_id, process.span_id}
