"""Password hashing (argon2id) and the password policy.

Hashing runs in a bounded thread pool: argon2-cffi releases the GIL, so the event loop keeps serving while
a hash runs, and at most ``workers`` hashes (``memory_cost`` KiB each) are in flight however many logins
arrive; the rest wait in the pool's queue, holding only their password string.

Passwords are NFKC-normalised before hashing (NIST SP 800-63B 5.1.1.2), so the same password typed on
keyboards that emit composed or decomposed characters verifies alike. Neither passwords nor hashes are
ever logged or put in an error message.

The policy follows ASVS 6.2: 8-128 characters counted as code points (no truncation), not the username,
the email or its local part, not a common password, and no composition rules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from meshkit.rpc.status import FieldViolation

log = logging.getLogger(__name__)

MIN_LENGTH = 8
MAX_LENGTH = 128
# Stored hashes beyond these are refused unverified: a planted or imported hash must not be able to make
# one login cost gigabytes or seconds (Kratos bounds imported hashes the same way).
MAX_MEMORY_KIB = 1024 * 1024
MAX_TIME_COST = 20
MAX_PARALLELISM = 16

_T = TypeVar("_T")


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    needs_rehash: bool = False  # the hash was made with other parameters than the current ones


def _secret(password: str) -> bytes:
    # surrogatepass: a lone surrogate cannot come through gRPC, but must never turn a login into a 500.
    return unicodedata.normalize("NFKC", password).encode("utf-8", "surrogatepass")


class Passwords:
    """argon2id with OWASP's second option by default (19 MiB, t=2, p=1)."""

    def __init__(
        self,
        *,
        memory_cost: int = 19456,
        time_cost: int = 2,
        parallelism: int = 1,
        workers: int | None = None,
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="argon2"
        )
        self._dummy_hash: str | None = None

    async def _run(self, fn: Callable[[], _T]) -> _T:
        # A cancelled caller (client gone, deadline) also cancels its job if it has not started yet.
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def hash(self, password: str) -> str:
        secret = _secret(password)
        return await self._run(lambda: self._hasher.hash(secret))

    async def verify(self, stored_hash: str, password: str) -> VerifyResult:
        try:
            params = extract_parameters(stored_hash)
        except (InvalidHashError, ValueError):
            return VerifyResult(ok=False)
        if (
            params.memory_cost > MAX_MEMORY_KIB
            or params.time_cost > MAX_TIME_COST
            or params.parallelism > MAX_PARALLELISM
        ):
            log.warning(
                "stored password hash refused: parameters out of bounds",
                extra={"m": params.memory_cost, "t": params.time_cost, "p": params.parallelism},
            )
            return VerifyResult(ok=False)
        if not await self._run(lambda: self._matches(stored_hash, _secret(password))):
            return VerifyResult(ok=False)
        return VerifyResult(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))

    async def burn(self, password: str) -> None:
        """Spend one verification at the current parameters, for an unknown user or a locked account."""
        if self._dummy_hash is None:
            # Made lazily and off the loop; two first callers racing just make two equivalent dummies.
            self._dummy_hash = await self.hash(secrets.token_urlsafe(24))
        dummy = self._dummy_hash
        await self._run(lambda: self._matches(dummy, _secret(password)))

    def _matches(self, stored_hash: str, secret: bytes) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):  # mismatch, corrupt or unsupported hash
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("backends.auth").joinpath("common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check_password(password: str, *, username: str, email: str) -> list[FieldViolation]:
    """The policy's violations (field ``password``); the messages never repeat the password."""
    length = len(password)  # code points, not UTF-8 bytes
    if length < MIN_LENGTH:
        return [("password", f"must be at least {MIN_LENGTH} characters")]
    if length > MAX_LENGTH:
        return [("password", f"must be at most {MAX_LENGTH} characters")]
    folded = password.casefold()
    email = email.strip().casefold()
    identities = {username.strip().casefold(), email, email.rpartition("@")[0]} - {""}
    if folded in identities:
        return [("password", "must not be the same as the username or email")]
    if folded in common_passwords():
        return [("password", "is too common; choose a less common password")]
    return []
