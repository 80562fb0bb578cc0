"""Full-text search of users: one tokenizer for documents and queries, and a safe query per dialect.

Python decides what a word is, on both sides: :func:`document` turns a field into the text the database
indexes (``users.search_*`` columns) and :func:`parse` turns the user's ``q`` into terms built from the
same words. A word is a run of Unicode letters and digits, case-folded and without diacritics
("ÉMILE" → "emile", "john.doe@example.com" → "john doe example com"), so the database's own tokenizer
only ever sees plain words and both dialects agree on case, accents and punctuation (PostgreSQL's
``lower()`` ignores non-ASCII letters under the C locale, and its parser keeps an email as one token).
The databases then only stem: SQLite FTS5 with ``porter``, PostgreSQL with the Snowball English stemmer.

Query semantics: bare words and ``"quoted phrases"``, all required (AND). Characters other than letters
and digits never reach the database, so FTS operators, column filters and SQL are inert: a bare chunk
with punctuation inside (``john.doe@example.com``, ``O'Brien``) is a phrase of its words, ``AND``,
``OR``, ``NOT`` and ``NEAR`` are ordinary words, and a query left without words matches nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import reduce
from typing import Any

from sqlalchemy import ColumnElement, FromClause, column, func, literal_column, select, table, true
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.dialects.postgresql.ext import phraseto_tsquery, plainto_tsquery

from backends.users.models import users

__all__ = ["PG_CONFIG", "Match", "Term", "document", "fts5_query", "match", "parse", "pg_tsquery", "words"]

# Text search configuration created by the migration: English stemming without a stop-word list, so
# names like "Will" or "Don" stay searchable on PostgreSQL as they are in FTS5.
PG_CONFIG = "users_search"

_NAME_WEIGHT = 2.0  # a hit in the name ranks above one in email or username (PostgreSQL: weights A, B)
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" is punctuation here


def words(text: str) -> list[str]:
    """The words of ``text``: case-folded, diacritics removed, split on everything else."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _WORD.findall(bare.casefold())


def document(*fields: str) -> str:
    """What the database indexes for ``fields`` (joined: first and last name form one phrase)."""
    return " ".join(word for field in fields for word in words(field))


@dataclass(frozen=True)
class Term:
    """Words that must appear next to each other, in order, within one field (one word: anywhere)."""

    words: tuple[str, ...]

    @property
    def is_phrase(self) -> bool:
        return len(self.words) > 1


def parse(q: str) -> tuple[Term, ...]:
    """The terms of ``q``, in order, without duplicates; empty when ``q`` has no word."""
    parts = q.split('"')
    if len(parts) % 2 == 0:  # an unbalanced quote: the text after it counts as bare words
        parts[-2:] = [parts[-2] + " " + parts[-1]]
    terms: list[Term] = []
    for index, part in enumerate(parts):
        quoted = index % 2 == 1
        chunks = [part] if quoted else part.split()
        terms += [Term(tuple(found)) for chunk in chunks if (found := words(chunk))]
    return tuple(dict.fromkeys(terms))


def fts5_query(terms: tuple[Term, ...]) -> str:
    """An FTS5 MATCH expression: every term a double-quoted string (FTS5 reads no operator inside)."""
    return " AND ".join('"' + " ".join(term.words).replace('"', '""') + '"' for term in terms)


def pg_tsquery(terms: tuple[Term, ...]) -> ColumnElement[Any]:
    """A ``tsquery`` of bound parameters: ``plainto_``/``phraseto_tsquery`` per term, joined with ``&&``.

    Both functions accept any text without raising, and the words are bound, never spliced into SQL.
    """
    if not terms:
        raise ValueError("no terms to search for")
    parts = [
        (phraseto_tsquery if term.is_phrase else plainto_tsquery)(PG_CONFIG, " ".join(term.words))
        for term in terms
    ]
    return reduce(lambda left, right: left.op("&&")(right), parts)


@dataclass(frozen=True)
class Match:
    """How a search selects and ranks ``users`` rows on one dialect."""

    source: FromClause  # users, joined to the FTS5 hits on SQLite
    condition: ColumnElement[bool]
    best_first: ColumnElement[Any]  # an ORDER BY term


def match(dialect: str, terms: tuple[Term, ...]) -> Match:
    """The match of ``terms`` (not empty) against the index the migration made for ``dialect``."""
    if dialect == "postgresql":
        vector = literal_column("users.search_vector", TSVECTOR)
        # A subquery, so the tsquery is built once per statement rather than once per row scanned.
        query = select(pg_tsquery(terms)).scalar_subquery()
        return Match(users, vector.op("@@")(query), func.ts_rank(vector, query).desc())
    fts = table("users_fts", column("rowid"))
    # Materialized: SQLite would otherwise flatten the hits into the join and may then walk the
    # tenant's users, running the MATCH once per user (hundreds of ms at 10 000 users).
    hits = (
        select(fts.c.rowid, func.bm25(literal_column("users_fts"), _NAME_WEIGHT, 1.0, 1.0).label("score"))
        .where(literal_column("users_fts").match(fts5_query(terms)))
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    # bm25() is lower for better matches.
    return Match(hits.join(users, literal_column("users.rowid") == hits.c.rowid), true(), hits.c.score.asc())
