"""Authentication of every gRPC call: a bearer access token in metadata, verified before the handler.

Public methods are not hard-coded here: a method whose ``(portico.gateway.v1.route)`` option says
``ACCESS_PUBLIC`` is public on gRPC too, so the proto stays the one place that says who may call what.
Health and reflection are always open (orchestrators and grpcurl need them).

Per call: the token is verified (a token seen before costs a cache lookup,
:mod:`meshkit.auth.token_cache`), then its revocation marks are read in one Redis round trip — together
with the keys the method's handler reads first when the backend declared them (:mod:`meshkit.auth.prefetch`),
so a call costs one round trip, not two. A revoked token is refused before the handler runs either way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import CollectorRegistry, Counter

from meshkit.auth import prefetch
from meshkit.auth.keyfile import KeySetFile
from meshkit.auth.keys import JwksClient, KeysUnavailable
from meshkit.auth.revocation import RevocationChecker, RevocationUnknown
from meshkit.auth.token_cache import VerifiedTokenCache
from meshkit.auth.tokens import InvalidToken, Principal, TokenVerifier
from meshkit.config.tokens import TokenSettings
from meshkit.redis_client import RedisClient
from meshkit.rpc.context import Context
from meshkit.rpc.interceptors.base import Handler, Stream, Unary, WrappingInterceptor
from meshkit.rpc.status import abort
from stubs.portico.gateway.v1 import options_pb2

log = logging.getLogger(__name__)

_current: ContextVar[Principal | None] = ContextVar("portico_principal", default=None)
_ALWAYS_OPEN = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def current_principal() -> Principal:
    """The verified caller of the RPC being handled (only valid inside an authenticated handler)."""
    principal = _current.get()
    if principal is None:
        raise RuntimeError("no authenticated principal: the method is public or outside an RPC")
    return principal


def public_methods(service_names: Iterable[str]) -> frozenset[str]:
    """``/pkg.Service/Method`` of every method marked ``ACCESS_PUBLIC`` in its route policy."""
    pool = descriptor_pool.Default()
    found = set()
    for name in service_names:
        try:
            service = pool.FindServiceByName(name)
        except KeyError:
            continue  # not a proto-described service (e.g. a test service): everything authenticated
        for method in service.methods:
            policy = method.GetOptions().Extensions[options_pb2.route]
            if policy.access == options_pb2.ACCESS_PUBLIC:
                found.add(f"/{name}/{method.name}")
    return frozenset(found)


def token_fields(service_names: Iterable[str]) -> dict[str, str]:
    """``/pkg.Service/Method`` → the request field its route policy's ``token_field`` names, for the
    methods whose clients may send the access token in the message (a string field, checked here)."""
    pool = descriptor_pool.Default()
    found: dict[str, str] = {}
    for name in service_names:
        try:
            service = pool.FindServiceByName(name)
        except KeyError:
            continue
        for method in service.methods:
            field_name = method.GetOptions().Extensions[options_pb2.route].token_field
            if not field_name:
                continue
            field = method.input_type.fields_by_name.get(field_name)
            if field is None or field.type != field.TYPE_STRING or field.is_repeated:
                raise ValueError(f"{method.full_name}: token_field {field_name!r} is not a string field")
            found[f"/{name}/{method.name}"] = field_name
    return found


# Two ``authorization`` entries are ambiguous (a proxy in front may have checked the other one): refused
# as the gateway refuses two Authorization headers, never resolved by picking one.
AMBIGUOUS = object()
# A token in the request's token field that is not the one in the metadata: refused, never picked from.
CONFLICTING = object()


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | object | None:
    """The bearer token of a call; None without one; :data:`AMBIGUOUS` when there is more than one
    ``authorization`` entry."""
    values = [value for key, value in metadata or () if key == "authorization"]
    if len(values) > 1:
        return AMBIGUOUS
    if not values or not isinstance(values[0], str):
        return None
    scheme, _, token = values[0].partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class AuthInterceptor(WrappingInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        revocations: RevocationChecker,
        public: frozenset[str],
        registry: CollectorRegistry,
        prefetches: Mapping[str, prefetch.Prefetch] | None = None,
        token_fields: Mapping[str, str] | None = None,
    ) -> None:
        self._verifier = verifier
        self._revocations = revocations
        self._public = public
        self._prefetches = dict(prefetches or {})  # by "/pkg.Service/Method"
        self._token_fields = dict(token_fields or {})  # by "/pkg.Service/Method"
        self._rejections = Counter(
            "portico_grpc_auth_rejections_total",
            "Calls refused by authentication, by reason"
            " (keys_unavailable: UNAVAILABLE; the others: UNAUTHENTICATED).",
            ["reason"],
            registry=registry,
        )

    def applies(self, method: str) -> bool:
        return not (method in self._public or method.startswith(_ALWAYS_OPEN))

    async def _authenticate(
        self,
        token: str | object | None,
        context: Context,
        request: Any = None,
        ahead: prefetch.Prefetch | None = None,
    ) -> tuple[Principal, dict[str, prefetch.Value] | None]:
        """The caller, and the values of the keys ``ahead`` names for this request when read with the
        revocation marks (None otherwise); aborts the call when it is not allowed."""
        if token is AMBIGUOUS:
            self._rejections.labels("invalid").inc()
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "more than one authorization entry")
        if token is CONFLICTING:
            self._rejections.labels("invalid").inc()
            await abort(
                context, grpc.StatusCode.UNAUTHENTICATED, "the request's token is not the authorization's"
            )
        if not isinstance(token, str):
            self._rejections.labels("missing").inc()
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        try:
            principal = await self._verifier.verify(token)
        except InvalidToken as exc:
            self._rejections.labels("invalid").inc()
            log.info("token rejected", extra={"reason": str(exc)})
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")
        except KeysUnavailable:
            # Not the caller's fault, and maybe a valid token: UNAVAILABLE is retried, never a sign-out.
            self._rejections.labels("keys_unavailable").inc()
            await abort(context, grpc.StatusCode.UNAVAILABLE, "cannot verify tokens right now")
        keys = _keys_ahead(ahead, request, principal) if ahead is not None else ()
        try:
            revoked, values = await self._revocations.check(principal, keys)
        except RevocationUnknown:
            await abort(context, grpc.StatusCode.UNAVAILABLE, "token revocations cannot be checked, retry")
        if revoked:
            self._rejections.labels("revoked").inc()
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "token has been revoked")
        return principal, (dict(zip(keys, values, strict=True)) if keys and values is not None else None)

    def wrap_unary(self, behavior: Unary, method: str) -> Unary:
        ahead = self._prefetches.get(method)
        carried_in = self._token_fields.get(method)

        async def unary(request: Any, context: Context) -> Any:
            token = bearer_token(context.invocation_metadata())
            if carried_in is not None:
                token = _with_carried(token, getattr(request, carried_in))
            principal, values = await self._authenticate(token, context, request, ahead)
            reset = _current.set(principal)
            handover = prefetch.hand_over(values)
            try:
                return await behavior(request, context)
            finally:
                prefetch.reset(handover)
                _current.reset(reset)

        return unary

    def wrap_stream(self, behavior: Stream, method: str) -> Stream:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            principal, _ = await self._authenticate(bearer_token(context.invocation_metadata()), context)
            reset = _current.set(principal)
            try:
                async for item in behavior(request, context):
                    yield item
            finally:
                _current.reset(reset)

        return stream

    def other(self, handler: Handler, method: str) -> Handler | None:
        # No Portico RPC streams from the client; should one appear, refuse it rather than let it in
        # unauthenticated (None answers UNIMPLEMENTED).
        log.error(
            "refusing a client-streaming method the authenticator does not wrap",
            extra={"method": method},
        )
        return None


def _with_carried(token: str | object | None, carried: str) -> str | object | None:
    """The call's token when the request may carry one too: the metadata's, else the request's; two
    different ones are :data:`CONFLICTING`."""
    carried = carried.strip()
    if not carried or token is AMBIGUOUS:
        return token
    if token is None:
        return carried
    return token if token == carried else CONFLICTING


def _keys_ahead(ahead: prefetch.Prefetch, request: Any, principal: Principal) -> Sequence[str]:
    """The keys a backend declared for this request; none when its declaration fails (the handler then
    reads them itself: a prefetch only ever saves a round trip)."""
    try:
        return tuple(ahead(request, principal))
    except Exception:
        log.exception("prefetch declaration failed; the handler reads for itself")
        return ()


def token_checks(
    jwks_channel: grpc.aio.Channel,
    redis: RedisClient,
    registry: CollectorRegistry,
    settings: TokenSettings,
    *,
    kept_keys: KeySetFile | None = None,
) -> tuple[TokenVerifier, RevocationChecker]:
    """The verifier and revocation checker every token-checking process builds from its settings;
    ``kept_keys`` keeps its last fetched key set across restarts."""
    jwks = JwksClient(
        jwks_channel,
        cache_seconds=settings.jwks_cache_seconds,
        refetch_cooldown=settings.jwks_refetch_cooldown,
        kept=kept_keys,
        failures=Counter(
            "portico_jwks_fetch_failures_total",
            "Fetches of the token-signing keys (JWKS) from auth that failed.",
            registry=registry,
        ),
    )
    verifier = TokenVerifier(
        jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway=settings.jwt_leeway,
        cache=VerifiedTokenCache(),
    )
    errors = Counter(
        "portico_revocation_check_errors_total",
        "Revocation checks that could not reach Redis (decided by the in-process set when loaded).",
        registry=registry,
    )
    return verifier, RevocationChecker(redis, fail_open=settings.revocation_fail_open, errors=errors)
