"""The one normalisation of login names: what makes two usernames or two emails the same identity, and
which account a login attempt names.

Both the users backend (uniqueness of profiles) and the auth backend (uniqueness of credentials and login
lookup) store ``identity_key`` of each username and email in a key column with a unique index, and the
gateway keys its login rate limit with :func:`login_account`, the same function auth's login lookup calls,
so all three agree on who a name is. The key is computed here in Python and never by the database:
SQLite's ``lower()`` folds ASCII only and PostgreSQL's depends on the collation, so a database-side fold
would differ between dialects and from the gateway's.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TENANT",
    "MAX_LOGIN_NAME",
    "MAX_TENANT_ID",
    "LoginAccount",
    "identity_key",
    "login_account",
]

DEFAULT_TENANT = "default"  # the tenant of a request that names none
# The longest name an account can have: an email (the contract's limit; a username is at most 32). A
# longer login name names no account, so it is refused before any lookup or Redis key is made of it.
MAX_LOGIN_NAME = 255
MAX_TENANT_ID = 50  # the contract's tenant ids are 1-50 characters


def identity_key(name: str) -> str:
    """The comparison key of a username or email: NFKC, case-folded, NFKC again, outer whitespace trimmed.

    NFKC first makes compatibility forms (fullwidth letters, ligatures) plain letters; full case folding
    (not ``lower()``) makes "ß" and "ss" one key; the second NFKC puts back into composed form what folding
    decomposed (as Unicode's NFKC_Casefold does), so the key is stable: ``identity_key(identity_key(x))``
    equals ``identity_key(x)``.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


@dataclass(frozen=True)
class LoginAccount:
    """The account a login attempt names: its tenant and the identity key of the one name auth looks up."""

    tenant_id: str
    name: str  # the identity key of the name; "" when the attempt names nobody
    given: str = ""  # that name as the client sent it, outer whitespace trimmed (for the audit trail)


def login_account(tenant_id: str, *names: str) -> LoginAccount:
    """Which account a login names, exactly as auth looks it up: the tenant (the default one when empty)
    and the key of the first of ``names`` (username, then email) that is not blank.

    The other names are ignored, as auth ignores them: a username with a junk email is the username. The
    email and the username of one account stay two names here (telling that they are one account takes a
    lookup); auth's own lockout, keyed on the account it finds, counts both together.
    """
    tenant = tenant_id or DEFAULT_TENANT
    for name in names:
        key = identity_key(name)
        if key:
            return LoginAccount(tenant, key, name.strip())
    return LoginAccount(tenant, "")
