"""gRPC handlers of ``broker.v1.MessageService``: publish to and stream from the caller's tenant's topics.

The caller is the verified token's principal (the kit's interceptor refuses calls without one); its
tenant picks the Kafka topic (:mod:`backends.broker.topics`), so a tenant only ever reaches its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import grpc
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError, UnknownTopicOrPartitionError
from opentelemetry.propagate import inject

from backends.broker import cursor
from backends.broker.config import BrokerSettings
from backends.broker.cursor import Positions
from backends.broker.directory import TopicDirectory
from backends.broker.kafka_clients import KafkaClients, KafkaUnavailable
from backends.broker.metrics import BrokerMetrics
from backends.broker.subscriptions import ConsumerLimits, Subscription, SubscriptionSlots
from backends.broker.topics import internal_topic
from meshkit.auth.interceptor import current_principal
from meshkit.auth.revocation import RevocationChecker, RevocationUnknown
from meshkit.auth.tokens import Principal
from meshkit.finishing import Finishing
from meshkit.rpc.context import Context
from meshkit.rpc.status import INVALID_REQUEST, PAYLOAD_TOO_LARGE, FieldViolation, abort
from stubs.broker.v1 import broker_pb2, broker_pb2_grpc

log = logging.getLogger(__name__)

LATEST, EARLIEST = "latest", "earliest"
UNAVAILABLE_MESSAGE = "The message broker is unavailable, try again later"
SHUTTING_DOWN_MESSAGE = "The server is shutting down, reconnect"


def _text(raw: bytes | None) -> str:
    # Records written by other Kafka clients need not be UTF-8; a proto string must be.
    return raw.decode("utf-8", errors="replace") if raw else ""


def _item(
    name: str, record: ConsumerRecord[bytes, bytes], cursor: str
) -> broker_pb2.SubscribeToTopicResponse:
    item = broker_pb2.SubscribeToTopicResponse(
        topic=name,
        partition=record.partition,
        offset=record.offset,
        key=_text(record.key),
        message=_text(record.value),
        cursor=cursor,
    )
    if record.timestamp >= 0:
        item.timestamp.FromMilliseconds(record.timestamp)
    return item


def _headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {"content-type": "text/plain; charset=utf-8"}
    inject(carrier)  # traceparent: a consumer's span can continue the publisher's trace
    return [(key, value.encode()) for key, value in carrier.items()]


@dataclass(frozen=True)
class Start:
    """Where a subscription starts: the end, the beginning, or right after a client's cursor (read from
    the request field ``field``, named in a refusal)."""

    from_beginning: bool
    after: Positions | None
    field: str


@dataclass(frozen=True)
class BrokerDeps:
    """Everything :class:`MessageService` works with, built once by the backend's entry point."""

    settings: BrokerSettings
    clients: KafkaClients
    directory: TopicDirectory
    slots: SubscriptionSlots
    metrics: BrokerMetrics
    revocations: RevocationChecker | None = None  # re-checked while a stream is open


class MessageService(broker_pb2_grpc.MessageServiceServicer):
    def __init__(self, deps: BrokerDeps) -> None:
        settings = deps.settings
        self._settings = settings
        self._revocations = deps.revocations
        self._clients = deps.clients
        self._directory = deps.directory
        self._slots = deps.slots
        self._metrics = deps.metrics
        self._limits = ConsumerLimits(
            fetch_bytes=settings.subscription_fetch_bytes,
            partition_fetch_bytes=settings.subscription_partition_fetch_bytes,
            batch=settings.subscription_batch,
            timeout=settings.kafka_timeout,
        )
        self._closing = Finishing("subscription close")
        # Deadlines of the open streams: shutdown moves them to now, so every stream ends at once.
        self._streams: set[asyncio.Timeout] = set()
        self._revoked: set[asyncio.Timeout] = set()  # streams whose token was revoked while open
        self._draining = False

    async def _topic(self, context: Context, principal: Principal, name: str) -> str:
        try:
            return internal_topic(principal.tenant_id, name)
        except ValueError:  # the name was checked: the tenant id is one topics cannot carry
            await abort(context, grpc.StatusCode.PERMISSION_DENIED, "This tenant cannot use topics")

    # -- PublishMessage ----------------------------------------------------------------------------

    async def PublishMessage(
        self, request: broker_pb2.PublishMessageRequest, context: Context
    ) -> broker_pb2.PublishMessageResponse:
        principal = current_principal()
        value, key = request.message.encode(), request.key.encode()
        limit = self._settings.max_message_bytes
        if len(value) + len(key) > limit:
            await abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "Message too large",
                reason=PAYLOAD_TOO_LARGE,
                violations=[("message", f"message and key together must be at most {limit} bytes")],
            )
        topic = await self._topic(context, principal, request.topic)
        remaining = context.time_remaining()
        budget = min(self._settings.publish_timeout, remaining if remaining is not None else float("inf"))
        try:
            async with asyncio.timeout(budget):
                await self._directory.ensure(topic)
                producer = await self._clients.producer()
                stored = await producer.send_and_wait(topic, value, key=key or None, headers=_headers())
        except (KafkaUnavailable, KafkaError, TimeoutError) as exc:
            if isinstance(exc, UnknownTopicOrPartitionError):
                self._directory.forget(topic)
            log.warning("publish failed", extra={"error": type(exc).__name__})
            await abort(context, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
        self._metrics.published.inc()
        return broker_pb2.PublishMessageResponse(
            status="published", topic=request.topic, partition=stored.partition, offset=stored.offset
        )

    # -- SubscribeToTopic --------------------------------------------------------------------------

    # Written with context.write rather than as a generator: a cancelled call then ends at the await
    # in progress, at once, and a write the departed client failed can be told apart (see _follow).
    async def SubscribeToTopic(  # type: ignore[override]
        self, request: broker_pb2.SubscribeToTopicRequest, context: Context
    ) -> None:
        principal = current_principal()
        violations: list[FieldViolation] = []
        # A reconnecting browser sends Last-Event-ID with its first URL (and that URL's `from`): it wins.
        field, start = ("last_event_id", request.last_event_id) if request.last_event_id else ("from", "")
        start = start or getattr(request, "from") or LATEST
        after: Positions | None = None
        if start not in (LATEST, EARLIEST):
            try:
                after = cursor.parse(start)
            except cursor.CursorError as error:
                violations.append((field, str(error)))
        if violations:
            await abort(context, grpc.StatusCode.INVALID_ARGUMENT, INVALID_REQUEST, violations=violations)
        topic = await self._topic(context, principal, request.topic)
        if (limit := self._slots.take(principal.tenant_id)) is not None:
            what = "on this server" if limit == "process" else "for this tenant"
            await abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, f"Too many open subscriptions {what}")
        subscription: Subscription | None = None
        expiry = asyncio.timeout(0 if self._draining else self._lifetime(principal))
        self._streams.add(expiry)
        watcher = asyncio.create_task(self._watch_revocation(principal, expiry))
        try:
            subscription = Subscription(self._clients.bootstrap, topic, self._limits, self._clients.security)
            try:
                async with expiry:
                    await self._follow(
                        context, subscription, request.topic, Start(start == EARLIEST, after, field)
                    )
            except TimeoutError:
                if not expiry.expired():
                    raise
                if self._draining:
                    await abort(context, grpc.StatusCode.UNAVAILABLE, SHUTTING_DOWN_MESSAGE)
                if expiry in self._revoked:
                    await abort(context, grpc.StatusCode.UNAUTHENTICATED, "Token has been revoked")
                await abort(context, grpc.StatusCode.UNAUTHENTICATED, "The access token expired")
            except KafkaUnavailable as exc:
                log.warning("subscription failed", extra={"error": type(exc.__cause__ or exc).__name__})
                await abort(context, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE)
        finally:
            watcher.cancel()
            self._streams.discard(expiry)
            self._revoked.discard(expiry)
            # Run to its end: the call is usually ending because it was cancelled, and the slot and gauge
            # must follow the consumer's real end even if this task is cancelled again.
            await self._closing.run(self._close(subscription, principal.tenant_id))

    async def end_streams(self) -> None:
        """Shutdown: end every open stream now with UNAVAILABLE, so clients reconnect to another replica
        instead of holding this process for the whole grace period."""
        self._draining = True
        now = asyncio.get_running_loop().time()
        for expiry in list(self._streams):
            with contextlib.suppress(RuntimeError):  # the stream is already ending on its own
                expiry.reschedule(now)

    async def _watch_revocation(self, principal: Principal, expiry: asyncio.Timeout) -> None:
        """End the stream when its token is revoked (logout, ended sessions), checked every
        ``stream_revocation_check_seconds``: the call was authenticated once, at its start."""
        if self._revocations is None:
            return
        while True:
            await asyncio.sleep(self._settings.stream_revocation_check_seconds)
            try:
                revoked = await self._revocations.is_revoked(principal)
            except RevocationUnknown:
                continue  # cannot know right now: ask again at the next check
            if revoked:
                self._revoked.add(expiry)
                with contextlib.suppress(RuntimeError):  # already ending on its own
                    expiry.reschedule(asyncio.get_running_loop().time())
                return

    def _lifetime(self, principal: Principal) -> float | None:
        """Seconds the stream may last: until the token expires (with the verifier's leeway)."""
        if not self._settings.end_streams_at_token_expiry:
            return None
        return max(0.0, principal.expires_at + self._settings.jwt_leeway - time.time())

    async def _follow(self, context: Context, subscription: Subscription, name: str, start: Start) -> None:
        # Asked of Kafka now, not remembered: partitions added since would otherwise be taken for new
        # ones later and read from their beginning (records from before the open), and a cursor naming
        # them refused.
        partitions = await self._directory.current_partitions(subscription.topic)
        if partitions is None:
            # Not created yet: the client is subscribed now, and all the topic will ever hold is new.
            await context.send_initial_metadata(())
            partitions = await self._directory.wait_for(subscription.topic)
            positions = await subscription.open(partitions, from_beginning=True)
        else:
            if start.after is not None and (beyond := max(start.after)) >= partitions:
                await abort(
                    context,
                    grpc.StatusCode.INVALID_ARGUMENT,
                    INVALID_REQUEST,
                    violations=[(start.field, f"names partition {beyond}; the topic has {partitions}")],
                )
            positions = await subscription.open(
                partitions, from_beginning=start.from_beginning, after=start.after
            )
            await context.send_initial_metadata(())
        loop = asyncio.get_running_loop()
        check_every = self._settings.stream_partition_check_seconds
        next_check = loop.time() + check_every
        async for records in subscription.batches():
            self._metrics.fetched.inc(len(records))
            for record in records:
                positions[record.partition] = record.offset
                try:
                    await context.write(_item(name, record, cursor.render(positions)))
                except grpc.aio.InternalError:  # the client left while the write waited: the call is over
                    return
                self._metrics.delivered.inc()
            if loop.time() >= next_check:  # every record taken is delivered: the consumer may change
                next_check = loop.time() + check_every
                await self._take_new_partitions(subscription, positions, check_every)

    async def _take_new_partitions(
        self, subscription: Subscription, positions: Positions, max_age: float
    ) -> None:
        """Read the partitions an operator added to the topic too; a failed check is tried again at the
        next one (the stream goes on meanwhile on the partitions it has)."""
        try:
            partitions = await self._directory.current_partitions(subscription.topic, max_age)
            if partitions is not None and partitions > subscription.partitions:
                await subscription.grow(partitions, positions)
                log.info(
                    "subscription reads new partitions",
                    extra={"topic": subscription.topic, "partitions": partitions},
                )
        except KafkaUnavailable as exc:
            log.warning("partition check failed", extra={"error": type(exc.__cause__ or exc).__name__})

    async def _close(self, subscription: Subscription | None, tenant_id: str) -> None:
        try:
            if subscription is not None:
                await subscription.close()
        finally:
            self._slots.give_back(tenant_id)
