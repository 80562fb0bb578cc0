"""Parsing of search queries: words, phrases, and hostile input reduced to inert words."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy.dialects.postgresql.base import PGDialect

from backends.users.search import PG_CONFIG, Term, document, fts5_query, parse, pg_tsquery, words
from harness.stores.users import HOSTILE_QUERIES


def terms(*groups: str) -> tuple[Term, ...]:
    return tuple(Term(tuple(group.split())) for group in groups)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("john", terms("john")),
        ("John DOE", terms("john", "doe")),
        ('"John Doe"', terms("john doe")),
        ('smith "John Doe" jr', terms("smith", "john doe", "jr")),
        ('"John Doe" "Jane Roe"', terms("john doe", "jane roe")),
        ("  john   doe  ", terms("john", "doe")),
        ("john john JOHN", terms("john")),
        ("Running", terms("running")),  # stemming is the database's job
        ("john.doe@example.com", terms("john doe example com")),  # a chunk with punctuation: a phrase
        ("j_doe", terms("j doe")),
        ("O'Brien", terms("o brien")),
        ("Mary-Jane", terms("mary jane")),
        ("user42", terms("user42")),
    ],
)
def test_words_and_phrases(q: str, expected: tuple[Term, ...]) -> None:
    assert parse(q) == expected


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('"John Doe', terms("john", "doe")),  # an unbalanced quote is ignored
        ('smith "John Doe', terms("smith", "john", "doe")),
        ('"a b" "c d', terms("a b", "c", "d")),
        ('""', ()),
        ('"' * 100, ()),
        ("john AND doe", terms("john", "and", "doe")),  # operators are ordinary words
        ("john OR doe NOT x", terms("john", "or", "doe", "not", "x")),
        ("NEAR(john doe)", terms("near john", "doe")),
        ("email:john", terms("email john")),  # no column filter
        ("john* ^doe", terms("john", "doe")),
        ("-john +doe", terms("john", "doe")),
        ("(john)", terms("john")),
        ("'; DROP TABLE users; --", terms("drop", "table", "users")),
        ("jo\x00hn", terms("jo hn")),
        ("!!! ... @@", ()),
        ("😀 john 😀", terms("john")),
    ],
)
def test_operators_are_neutralised(q: str, expected: tuple[Term, ...]) -> None:
    assert parse(q) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ÉMILE", ["emile"]),
        ("Zoë", ["zoe"]),
        ("José", ["jose"]),
        ("Jose\u0301", ["jose"]),  # decomposed accent
        ("Straße", ["strasse"]),
        ("ΑΘΗΝΑ", ["αθηνα"]),
        ("Дмитрий", ["дмитрии"]),  # й decomposes to и + breve
        ("ﬃ", ["ffi"]),
        ("\U0001d55b\U0001d560\U0001d559\U0001d55f", ["john"]),
        ("李小龙", ["李小龙"]),
        ("", []),
    ],
)
def test_words_fold_case_and_diacritics(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_document_joins_fields_into_one_phrase() -> None:
    assert document("Mary-Jane", "O'Brien") == "mary jane o brien"
    assert document("", "Doe") == "doe"


def test_fts5_query_quotes_every_term() -> None:
    assert fts5_query(terms("john doe", "smith")) == '"john doe" AND "smith"'


def test_pg_tsquery_binds_words() -> None:
    compiled = pg_tsquery(terms("john doe", "smith")).compile(dialect=PGDialect())
    sql = str(compiled)
    assert sql.count("phraseto_tsquery(") == 1
    assert sql.count("plainto_tsquery(") == 1
    assert " && " in sql
    assert "john" not in sql
    assert sorted(map(str, compiled.params.values())) == sorted([PG_CONFIG, PG_CONFIG, "john doe", "smith"])


def test_pg_tsquery_needs_a_term() -> None:
    with pytest.raises(ValueError, match="no terms"):
        pg_tsquery(())


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    """An in-memory FTS5 table like the migration's, to run the generated MATCH expressions."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIRTUAL TABLE t USING fts5(a, b, c, tokenize='porter unicode61')")
    connection.execute("INSERT INTO t VALUES ('john doe', 'john doe example com', 'jdoe')")
    yield connection
    connection.close()


_SAFE_MATCH = re.compile(r'^"[^"]+"( AND "[^"]+")*$')


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
def test_hostile_queries_give_inert_fts5_expressions(q: str, fts5: sqlite3.Connection) -> None:
    parsed = parse(q)
    assert all(re.fullmatch(r"[^\W_]+", word) for term in parsed for word in term.words)
    if not parsed:
        return
    expression = fts5_query(parsed)
    assert _SAFE_MATCH.match(expression)
    fts5.execute("SELECT rowid FROM t WHERE t MATCH ?", (expression,)).fetchall()


@pytest.mark.parametrize("q", HOSTILE_QUERIES)
def test_hostile_queries_bind_only_words_in_postgresql(q: str) -> None:
    parsed = parse(q)
    if not parsed:
        return
    compiled = pg_tsquery(parsed).compile(dialect=PGDialect())
    assert set(compiled.params.values()) == {PG_CONFIG} | {" ".join(term.words) for term in parsed}
