"""The one normalisation of login names: what makes two usernames or two emails the same identity.

Both the users backend (uniqueness of profiles) and the auth backend (uniqueness of credentials and login
lookup) store ``identity_key`` of each username and email in a key column with a unique index, and the
gateway keys its login rate limit with it, so all three agree on who a name is. The key is computed here in
Python and never by the database: SQLite's ``lower()`` folds ASCII only and PostgreSQL's depends on the
collation, so a database-side fold would differ between dialects and from the gateway's.
"""

from __future__ import annotations

import unicodedata

__all__ = ["identity_key"]


def identity_key(name: str) -> str:
    """The comparison key of a username or email: NFKC, case-folded, NFKC again, outer whitespace trimmed.

    NFKC first makes compatibility forms (fullwidth letters, ligatures) plain letters; full case folding
    (not ``lower()``) makes "ß" and "ss" one key; the second NFKC puts back into composed form what folding
    decomposed (as Unicode's NFKC_Casefold does), so the key is stable: ``identity_key(identity_key(x))``
    equals ``identity_key(x)``.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    return unicodedata.normalize("NFKC", folded).strip()
