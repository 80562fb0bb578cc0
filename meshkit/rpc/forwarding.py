"""Whose ``x-client-ip`` a backend believes: a trusted forwarder's, the gateway's or a backend's calling
another on a client's behalf (auth → users, users → auth, posts → users: :func:`onward_metadata`).

The client address decides which address a failed login counts against (auth's lockout) and what the
audit trail records, so a direct caller must not choose its own. A forwarder proves itself per call by
the mesh's forwarding secret in ``x-portico-forwarder`` (compared in constant time), or in an mTLS
deployment by a client-certificate identity listed in ``PORTICO_TRUSTED_FORWARDERS``. Every other caller
is known by its peer address (:func:`meshkit.rpc.context.client_ip`).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field

from pydantic import SecretStr

from meshkit.config.serve import ForwardingSettings
from meshkit.rpc.context import Context, client_ip, metadata_value

log = logging.getLogger(__name__)

FORWARDER_KEY = "x-portico-forwarder"  # the metadata key that carries the forwarding secret
MIN_SECRET_CHARS = 16


def forwarder_metadata(secret: SecretStr | None) -> tuple[tuple[str, str], ...]:
    """What a forwarder sends beside ``x-client-ip`` so the called backend believes it (nothing without a
    secret: the backend then believes only a certificate, or nobody)."""
    return ((FORWARDER_KEY, secret.get_secret_value()),) if secret is not None else ()


def onward_metadata(context: Context, secret: SecretStr | None) -> tuple[tuple[str, str], ...]:
    """For a call a backend makes on behalf of the call it serves: the request id, and the client address
    this backend itself believes (a trusted forwarder's, else its caller's peer; never a header a direct
    caller chose) with what makes the called backend believe it in turn."""
    request_id = metadata_value(context, "x-request-id")
    return (
        *((("x-request-id", request_id),) if request_id else ()),
        ("x-client-ip", client_ip(context)),
        *forwarder_metadata(secret),
    )


@dataclass(frozen=True)
class ForwarderTrust:
    """The forwarding secret and the certificate identities a backend trusts to forward client addresses."""

    secret: bytes = field(default=b"", repr=False)  # never in a repr, hence never in a log
    identities: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: ForwardingSettings) -> ForwarderTrust:
        secret = settings.forwarding_secret
        return cls(
            secret.get_secret_value().encode() if secret is not None else b"",
            settings.forwarder_identities(),
        )

    @property
    def configured(self) -> bool:
        return bool(self.secret or self.identities)

    def trusts(self, context: Context) -> bool:
        """Whether the caller of this call is a forwarder whose ``x-client-ip`` is believed."""
        if self.secret:
            presented = metadata_value(context, FORWARDER_KEY)
            if presented and hmac.compare_digest(presented.encode(), self.secret):
                return True
        if self.identities:
            # The verified certificate's identities (its SANs, else its CN); None without mTLS.
            for identity in context.peer_identities() or ():
                if identity.decode("utf-8", "replace") in self.identities:
                    return True
        return False

    def log_at_start(self, *, mtls: bool) -> None:
        """Say once how client addresses are decided (never the secret itself)."""
        if not self.configured:
            log.warning(
                "x-client-ip is ignored: no trusted forwarder is configured (PORTICO_FORWARDING_SECRET or "
                "PORTICO_TRUSTED_FORWARDERS); every caller is known by its peer address"
            )
            return
        if self.secret and len(self.secret) < MIN_SECRET_CHARS:
            log.warning(
                "PORTICO_FORWARDING_SECRET is short: use 32 or more random characters",
                extra={"min_chars": MIN_SECRET_CHARS},
            )
        if self.identities and not mtls:
            log.warning(
                "PORTICO_TRUSTED_FORWARDERS needs mTLS (a client CA file): without client certificates "
                "no caller can prove one of these identities"
            )
        log.info(
            "x-client-ip is believed from trusted forwarders only",
            extra={"by_secret": bool(self.secret), "identities": sorted(self.identities)},
        )
