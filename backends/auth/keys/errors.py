"""The one exception of the key store: its message is safe to show (never key material or a passphrase)."""

from __future__ import annotations


class KeyStoreError(Exception):
    """The keys directory cannot be used as it is; the message says why and what to do."""
