"""The search index behind recall: one table for memories, one for the user's own messages.

SQLite: FTS5 tables (unicode61 over the bigram text of chat/recall/tokens.py, bm25 ranking).
PostgreSQL: a side table with a tsvector and a GIN index (ts_rank). Both are keyed by the row's
primary key and carry a scope (owner × figure); the caller then loads the rows through an
owner-filtered query, so an index row that outlived its source can never surface.

On SQLite every token is also prefixed with its scope ("o12p3x" + "黄鹤"): FTS5's bm25 counts, for
each query term, the rows that contain it across the whole table, so with site-wide tokens a common
bigram costs a walk over every user's rows (with 1,000,000 messages a query took 20 ms at p95,
bench/recall.py). With scoped tokens each term's row list is one owner × figure's, the cost follows
the user's own history, and the term frequencies bm25 weighs are that user's. The `scope` column
stays (plain, for inspection); the MATCH no longer needs it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from django.db import connection

from chat.recall.tokens import MAX_QUERY_UNIGRAMS, Term, index_text, query_terms

MEMORY, MESSAGE = "recall_memory", "recall_message"
TABLES = (MEMORY, MESSAGE)


def scope(owner_id: int, persona_id: int | None) -> str:
    """One token per owner × figure; figure 0 is the profile that every figure shares."""
    return f"o{owner_id}p{persona_id or 0}"


def _sqlite() -> bool:
    return connection.vendor == "sqlite"


# -- schema -----------------------------------------------------------------------------------

def create_tables(schema_editor) -> None:
    for table in TABLES:
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {table}_fts USING fts5("
                "scope, grams, singles, tokenize = 'unicode61 remove_diacritics 0')"
            )
        else:
            # scope is an array: a scene's message belongs to both figures' scopes.
            schema_editor.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_idx (id bigint PRIMARY KEY, scope text[] NOT NULL, "
                "doc tsvector NOT NULL)"
            )
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {table}_doc ON {table}_idx USING gin (doc)")
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {table}_scope ON {table}_idx USING gin (scope)")


def drop_tables(schema_editor) -> None:
    for table in TABLES:
        suffix = "fts" if schema_editor.connection.vendor == "sqlite" else "idx"
        schema_editor.execute(f"DROP TABLE IF EXISTS {table}_{suffix}")


# -- writes -----------------------------------------------------------------------------------

def _scoped(scope_token: str, tokens: str) -> str:
    """"o12p3" + "x" + each token: the "x" ends the scope, so no two scopes can spell the same token."""
    return " ".join(f"{scope_token}x{token}" for token in tokens.split())


def _sqlite_row(pk: int, scopes: Sequence[str], text: str) -> tuple[int, str, str, str]:
    grams, singles = index_text(text)
    return (pk, " ".join(scopes), " ".join(_scoped(s, grams) for s in scopes),
            " ".join(_scoped(s, singles) for s in scopes))


def put(table: str, rows: Iterable[tuple[int, Sequence[str], str]], *, new: bool = False) -> None:
    """Index rows given as (pk, scopes, text); `new` skips removing an older entry for the same pk."""
    if _sqlite():
        rows = [_sqlite_row(pk, scopes, text) for pk, scopes, text in rows]
    else:
        rows = [(pk, list(scopes), *index_text(text)) for pk, scopes, text in rows]
    if not rows:
        return
    if not new:
        remove(table, [row[0] for row in rows])
    with connection.cursor() as cursor:
        if _sqlite():
            cursor.executemany(f"INSERT INTO {table}_fts (rowid, scope, grams, singles) VALUES (%s, %s, %s, %s)", rows)
        else:
            cursor.executemany(
                f"INSERT INTO {table}_idx (id, scope, doc) VALUES (%s, %s, "
                "setweight(to_tsvector('simple', %s), 'A') || setweight(to_tsvector('simple', %s), 'B'))",
                rows,
            )


def _table(table: str) -> tuple[str, str]:
    """The index table's name and its key column on this database."""
    return (f"{table}_fts", "rowid") if _sqlite() else (f"{table}_idx", "id")


def remove(table: str, pks: Sequence[int]) -> None:
    if not pks:
        return
    name, key = _table(table)
    with connection.cursor() as cursor:
        for start in range(0, len(pks), 500):
            chunk = list(pks[start:start + 500])
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {name} WHERE {key} IN ({marks})", chunk)


def clear() -> None:
    """Empty both index tables (before a rebuild)."""
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {_table(table)[0]}")


# -- search -----------------------------------------------------------------------------------

def _fts_quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts_query(scopes: Sequence[str], terms: Sequence[Term]) -> str:
    """Each term once per scope, in scoped tokens: "o1p3x黄鹤" + "o1p3x鹤楼" is a phrase."""
    def term(scope_token: str, t: Term) -> str:
        column = "singles" if t.unigram else "grams"
        phrase = " + ".join(_fts_quote(f"{scope_token}x{token}") for token in t.tokens)
        return f"{column} : {phrase}"
    return " OR ".join(term(s, t) for s in scopes for t in terms)


def _ts_query(terms: Sequence[Term], op: str = " | ") -> str:
    def lexeme(token: str, weight: str) -> str:
        return "'" + token.replace("'", "''").replace("\\", "\\\\") + "':" + weight
    parts = []
    for t in terms:
        weight = "B" if t.unigram else "A"
        parts.append("(" + " <-> ".join(lexeme(token, weight) for token in t.tokens) + ")")
    return op.join(parts)


RERANK_POOL = 5  # bm25's best limit × this many are re-scored by coverage (SQLite)


def _rerank(scopes: Sequence[str], terms: Sequence[Term], rows, limit: int) -> list[tuple[int, float]]:
    """Re-score bm25's best rows by which query terms they contain, each weighted by its rarity in
    the pool (log(1 + pool / rows holding it)), a unigram at half a bigram; bm25 breaks ties.

    bm25 prefers short rows: "用户去过草堂" beats "用户家在成都，离杜甫草堂只有两站地铁" for "我家附近那个
    草堂" even when the longer one shares more of the query. Memories and messages are short, so
    coverage is the better first key; the pool keeps the cost bounded."""
    wanted = [(t.unigram, [tuple(f"{s}x{token}" for token in t.tokens) for s in scopes]) for t in terms]
    docs = []
    for pk, score, grams, singles in rows:
        have, have_single = set(grams.split()), set(singles.split())
        matched = []
        for i, (unigram, phrases) in enumerate(wanted):
            tokens = have_single if unigram else have
            for phrase in phrases:
                if all(token in tokens for token in phrase) if len(phrase) > 1 else phrase[0] in tokens:
                    matched.append(i)
                    break
        docs.append((pk, score, matched))
    pool = len(docs)
    holding = Counter(i for _, _, matched in docs for i in matched)
    weight = [math.log(1 + pool / (1 + holding[i])) * (0.5 if t.unigram else 1.0) for i, t in enumerate(terms)]
    scored = [(sum(weight[i] for i in matched), score, pk) for pk, score, matched in docs]
    scored.sort(key=lambda row: (row[0], row[1]), reverse=True)
    return [(pk, cover + score / 1000) for cover, score, pk in scored[:limit]]


def search(table: str, scopes: Sequence[str], text: str, limit: int) -> list[tuple[int, float]]:
    """(pk, score) of the best matches among rows of these scopes, best first; higher is better.

    Messages are searched by their bigrams only (and a one-character query by its character): a
    user's history is long, uncommon characters still match thousands of its rows, and an exchange
    is recalled as a reminder; the single characters serve memories (bench/recall.py)."""
    terms = query_terms(text, unigrams=0 if table == MESSAGE else MAX_QUERY_UNIGRAMS)
    if not terms or not scopes:
        return []
    with connection.cursor() as cursor:
        if _sqlite():
            cursor.execute(
                f"SELECT rowid, -bm25({table}_fts, 0.0, 1.0, 0.5) AS score, grams, singles FROM {table}_fts "
                f"WHERE {table}_fts MATCH %s ORDER BY bm25({table}_fts, 0.0, 1.0, 0.5) LIMIT %s",
                [_fts_query(scopes, terms), limit * RERANK_POOL],
            )
            return _rerank(scopes, terms, cursor.fetchall(), limit)
        cursor.execute(
            f"SELECT id, ts_rank(doc, q) AS score FROM {table}_idx, to_tsquery('simple', %s) q "
            "WHERE scope && %s::text[] AND doc @@ q ORDER BY score DESC, id DESC LIMIT %s",
            [_ts_query(terms), list(scopes), limit],
        )
        return [(pk, float(score)) for pk, score in cursor.fetchall()]


def _fts_all(scopes: Sequence[str], terms: Sequence[Term]) -> str:
    """Every term, each in any of the scopes: (t1 in s1 OR t1 in s2) AND (t2 in s1 OR …)."""
    def term(t: Term) -> str:
        column = "singles" if t.unigram else "grams"
        return "(" + " OR ".join(
            f"{column} : " + " + ".join(_fts_quote(f"{s}x{token}") for token in t.tokens) for s in scopes) + ")"
    return " AND ".join(term(t) for t in terms)


def find(table: str, scopes: Sequence[str], terms: Sequence[Term], limit: int) -> list[int]:
    """The newest rows of these scopes that hold every term (a search box, not recall's ranking).
    A candidate list like `search`'s: the caller loads the rows through an owner-filtered query."""
    if not terms or not scopes:
        return []
    with connection.cursor() as cursor:
        if _sqlite():
            cursor.execute(f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH %s ORDER BY rowid DESC LIMIT %s",
                           [_fts_all(scopes, terms), limit])
        else:
            cursor.execute(
                f"SELECT id FROM {table}_idx WHERE scope && %s::text[] AND doc @@ to_tsquery('simple', %s) "
                "ORDER BY id DESC LIMIT %s",
                [list(scopes), _ts_query(terms, " & "), limit],
            )
        return [pk for (pk,) in cursor.fetchall()]
