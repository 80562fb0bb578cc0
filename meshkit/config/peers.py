"""Where the backends listen, for the processes that call them (mesh-wide ``PORTICO_<PEER>_TARGET``).

A target is ``host:port`` or a gRPC name with several addresses, each call going to the next one that is
up (round robin): ``dns:///users:50051`` (every address the name resolves to) or
``ipv4:10.0.0.5:50051,10.0.0.6:50051`` (a fixed list of replicas).

How a backend reaches its peers over TLS is mesh-wide too (``PORTICO_PEER_TLS_*``): one CA and one client
certificate for every backend's calls to the others and its JWKS fetch.
"""

from __future__ import annotations

from pathlib import Path
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


class PeerTls(MeshSettings):
    """TLS on a backend's calls to the other backends and to the JWKS source: the client side of their
    ``PORTICO_<NAME>_TLS_*`` (:func:`meshkit.rpc.channels.channel_credentials`). Plaintext when unset."""

    peer_tls_ca_file: Path | None = env(
        "PORTICO_PEER_TLS_CA_FILE",
        default=None,
        description="CA bundle that signed the backends' certificates: backends call each other over TLS",
    )
    peer_tls_cert_file: Path | None = env(
        "PORTICO_PEER_TLS_CERT_FILE",
        default=None,
        description="PEM client certificate a backend presents to peers that require mTLS",
    )
    peer_tls_key_file: Path | None = env(
        "PORTICO_PEER_TLS_KEY_FILE", default=None, description="PEM key of the peers' client certificate"
    )
