"""Ed25519 key material: generation, its public JWK and kid, and the PEM files that hold it.

A key file is PKCS8, encrypted with the passphrase when one is configured. An unencrypted file must be
private to its owner; an encrypted one may be readable by others (the passphrase protects it).
"""

from __future__ import annotations

import base64
import logging
import stat

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    KeySerializationEncryption,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from backends.auth.keys.errors import KeyStoreError
from meshkit.auth.tokens import jwk_thumbprint

log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
_ENCRYPTED_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_x(key: Ed25519PrivateKey) -> str:
    """The public key as RFC 8037 ``x``: raw bytes, base64url without padding."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def kid_of(key: Ed25519PrivateKey) -> str:
    """RFC 7638 thumbprint of the public JWK, the same function verifiers use."""
    return jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": public_x(key)})


def encode(key: Ed25519PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: KeySerializationEncryption = (
        BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    )
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)


def decode(data: bytes, mode: int, passphrase: bytes | None, *, name: str) -> Ed25519PrivateKey:
    """The key in ``data`` (read from the file ``name`` with permission bits ``mode``).

    Every error message names the file only: cryptography's own messages are not passed on, so neither
    the key nor the passphrase can reach a log through them.
    """
    encrypted = data.lstrip().startswith(_ENCRYPTED_HEADER)
    if not encrypted and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(
            f"key file {name} is unencrypted and accessible by group or others "
            f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it, or configure a passphrase"
        )
    if encrypted and not passphrase:
        raise KeyStoreError(f"key file {name} is encrypted but no passphrase is configured")
    if not encrypted and passphrase:
        # Tolerated so a passphrase can be introduced by rotating: new keys are encrypted, this one
        # retires in its turn. It is no more exposed than before.
        log.warning("key file stored unencrypted despite the passphrase", extra={"file": name})
    try:
        key = load_pem_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        reason = "wrong passphrase or damaged file" if encrypted else "not a valid PEM private key"
        raise KeyStoreError(f"cannot load key file {name}: {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyStoreError(f"key file {name} does not hold an Ed25519 private key")
    return key
