"""Optional TLS (and mTLS) server credentials from PEM files named in the settings."""

from __future__ import annotations

import grpc

from meshkit.config.serve import BackendSettings


def server_credentials(settings: BackendSettings) -> grpc.ServerCredentials | None:
    """None for plaintext; TLS when a certificate is configured; mTLS when a client CA is too."""
    if settings.tls_cert_file is None and settings.tls_key_file is None:
        return None
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        raise ValueError("TLS needs both a certificate and a private key file")
    pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
    client_ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
