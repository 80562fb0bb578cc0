"""Where the backends listen, for the processes that call them (mesh-wide ``PORTICO_<PEER>_TARGET``).

A target is ``host:port`` or a gRPC name such as ``dns:///users:50051`` (round robin over its addresses).
"""

from __future__ import annotations

from typing import Any

from meshkit.config import defaults
from meshkit.config.base import MeshSettings, env


def _target(peer: str, purpose: str) -> Any:
    return env(
        f"PORTICO_{peer.upper()}_TARGET",
        default=defaults.local_target(peer),
        description=f"gRPC target of the {peer} backend, {purpose}",
    )


class UsersPeer(MeshSettings):
    """The users backend."""

    users_target: str = _target("users", "which owns user profiles")


class AuthPeer(MeshSettings):
    """The auth backend."""

    auth_target: str = _target("auth", "whose GetJwks publishes the token-signing keys")


class JwksPeer(AuthPeer):
    """Where a backend fetches the token-signing keys: the auth backend unless another target is named."""

    jwks_target: str | None = env(
        "PORTICO_JWKS_TARGET",
        default=None,
        description="gRPC target serving GetJwks when it is not the auth backend itself",
    )


class PostsPeer(MeshSettings):
    """The posts backend."""

    posts_target: str = _target("posts", "which owns posts and their images")


class BrokerPeer(MeshSettings):
    """The broker backend."""

    broker_target: str = _target("broker", "which publishes and streams tenant messages")
