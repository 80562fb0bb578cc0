"""argon2id hashing off the event loop, rehash detection, bounded stored hashes, and the password policy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from backends.auth.passwords import MAX_LENGTH, Passwords, VerifyResult, check_password, common_passwords

# Cheap parameters where only the logic is under test; the OWASP ones where time is.
CHEAP = {"memory_cost": 1024, "time_cost": 1}


@pytest.fixture(scope="module")
def owasp() -> Iterator[Passwords]:
    passwords = Passwords()
    yield passwords
    passwords.close()


@pytest.fixture
def cheap() -> Iterator[Passwords]:
    passwords = Passwords(**CHEAP)
    yield passwords
    passwords.close()


async def test_hash_then_verify(owasp: Passwords) -> None:
    stored = await owasp.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert await owasp.verify(stored, "correct horse battery staple") == VerifyResult(ok=True)
    assert await owasp.verify(stored, "correct horse battery stapler") == VerifyResult(ok=False)
    assert await owasp.hash("correct horse battery staple") != stored  # salted


async def test_unicode_forms_verify_alike(cheap: Passwords) -> None:
    composed, decomposed = "caf\u00e9-pass-word", "cafe\u0301-pass-word"
    assert await cheap.verify(await cheap.hash(composed), decomposed) == VerifyResult(ok=True)


async def test_needs_rehash_when_parameters_change(cheap: Passwords, owasp: Passwords) -> None:
    old = await cheap.hash("correct horse battery staple")
    assert await owasp.verify(old, "correct horse battery staple") == VerifyResult(ok=True, needs_rehash=True)
    assert await owasp.verify(old, "wrong horse") == VerifyResult(ok=False, needs_rehash=False)
    assert await cheap.verify(old, "correct horse battery staple") == VerifyResult(ok=True)


@pytest.mark.parametrize(
    "stored",
    [
        "$argon2id$v=19$m=2097152,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",  # 2 GiB
        "$argon2id$v=19$m=19456,t=1000,p=1$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$argon2id$v=19$m=19456,t=2,p=64$c29tZXNhbHRzb21lc2FsdA$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt: not ours
        "not a hash",
        "",
    ],
)
async def test_absurd_or_foreign_hashes_refused_without_running_them(
    owasp: Passwords, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 GiB or t=1000 would take far longer than a login, if it ran at all: refused before argon2 runs."""
    ran: list[str] = []
    monkeypatch.setattr(PasswordHasher, "verify", lambda self, stored_hash, secret: ran.append(stored_hash))
    assert await owasp.verify(stored, "correct horse battery staple") == VerifyResult(ok=False)
    assert ran == []


async def test_burn_spends_one_verification_at_the_current_parameters(
    owasp: Passwords, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown user or a locked account costs what a wrong password costs: one argon2id verification
    against a hash of the same parameters (so the same time; timing itself belongs in the bench)."""
    await owasp.burn("warm-up")  # the dummy hash is made on first use
    hasher = owasp._hasher  # the one place that can see what was verified
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def recording(self: PasswordHasher, stored_hash: str | bytes, secret: str | bytes) -> bool:
        verified.append(str(stored_hash))
        return real_verify(self, stored_hash, secret)

    monkeypatch.setattr(PasswordHasher, "verify", recording)  # the class: its instances have slots
    await owasp.burn("wrong password")
    assert len(verified) == 1
    assert verified[0].startswith("$argon2id$")
    assert not hasher.check_needs_rehash(verified[0])  # the current memory, time and lanes


async def test_event_loop_keeps_ticking_during_a_hash_storm(owasp: Passwords) -> None:
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    start = time.perf_counter()
    hashes = await asyncio.gather(*(owasp.hash(f"password number {i}") for i in range(20)))
    elapsed = time.perf_counter() - start
    stop.set()
    await ticking
    assert len(set(hashes)) == 20
    # Ticks kept coming all along; one blocking hash on the loop would leave a 20+ ms hole per hash.
    assert len(gaps) > 5
    assert max(gaps) < max(0.1, elapsed / 4), (max(gaps), elapsed)


# -- policy ----------------------------------------------------------------------------------------


def _problems(password: str, username: str = "alice", email: str = "alice.smith@example.com") -> list[str]:
    return [description for _field, description in check_password(password, username=username, email=email)]


def test_length_bounds_count_characters() -> None:
    assert _problems("") == ["must be at least 8 characters"]
    assert _problems("x7#kQ2m") == ["must be at least 8 characters"]
    assert _problems("x7#kQ2mz") == []
    assert _problems("ab" * 64) == []  # 128: accepted in full, no truncation
    assert _problems("ab" * 64 + "c") == ["must be at most 128 characters"]
    assert MAX_LENGTH == 128
    # Characters, not bytes: 8 two-byte or four-byte characters are 8 characters; 7 are too few.
    assert _problems("\u00e9" * 8) == []
    assert _problems("\U0001f600" * 8) == []
    assert _problems("\U0001f600" * 7) == ["must be at least 8 characters"]
    assert _problems("\u00e9" * 128) == []  # 256 bytes in UTF-8, still 128 characters
    assert _problems("\u00e9" * 129) == ["must be at most 128 characters"]


@pytest.mark.parametrize(
    ("password", "username", "email"),
    [
        ("alice-in-chains", "Alice-In-Chains", "someone@example.com"),
        ("someone@example.com", "bob_the_builder", "SomeOne@Example.com"),
        ("Alice.Smith", "bob_the_builder", "alice.smith@example.com"),  # the email's local part
    ],
)
def test_not_the_username_or_email(password: str, username: str, email: str) -> None:
    assert _problems(password, username, email) == ["must not be the same as the username or email"]


def test_common_passwords_refused_case_insensitively() -> None:
    assert {"password", "12345678", "iloveyou", "qwertyuiop", "letmein"} <= common_passwords()
    for password in ("password", "PassWord1", "12345678", "QWERTYUIOP", "iloveyou"):
        assert _problems(password) == ["is too common; choose a less common password"], password


def test_no_composition_rules() -> None:
    for password in ("correct horse battery staple", "alllowercaseletters", "98237461928374", "         ."):
        assert _problems(password) == [], password


def test_messages_never_echo_the_password() -> None:
    for password in ("short", "x" * 200, "alice.smith", "password123"):
        for field, description in check_password(
            password, username="alice.smith", email="alice.smith@example.com"
        ):
            assert field == "password"
            assert password not in description
