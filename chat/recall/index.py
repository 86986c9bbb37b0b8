"""The search index behind recall: one table for memories, one for the user's own messages.

SQLite: FTS5 tables (unicode61 over the bigram text of chat/recall/tokens.py, bm25 ranking).
PostgreSQL: a side table with a tsvector and a GIN index (ts_rank). Both are keyed by the row's
primary key and carry a scope (owner × figure); the caller then loads the rows through an
owner-filtered query, so an index row that outlived its source can never surface.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection

from chat.recall.tokens import Term, index_text, query_terms

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
            schema_editor.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_idx (id bigint PRIMARY KEY, scope varchar(40) NOT NULL, "
                "doc tsvector NOT NULL)"
            )
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {table}_doc ON {table}_idx USING gin (doc)")
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {table}_scope ON {table}_idx (scope)")


def drop_tables(schema_editor) -> None:
    for table in TABLES:
        suffix = "fts" if schema_editor.connection.vendor == "sqlite" else "idx"
        schema_editor.execute(f"DROP TABLE IF EXISTS {table}_{suffix}")


# -- writes -----------------------------------------------------------------------------------

def put(table: str, rows: Iterable[tuple[int, Sequence[str], str]], *, new: bool = False) -> None:
    """Index rows given as (pk, scopes, text); `new` skips removing an older entry for the same pk."""
    rows = [(pk, " ".join(scopes), *index_text(text)) for pk, scopes, text in rows]
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


def remove(table: str, pks: Sequence[int]) -> None:
    if not pks:
        return
    with connection.cursor() as cursor:
        for start in range(0, len(pks), 500):
            chunk = list(pks[start:start + 500])
            marks = ", ".join(["%s"] * len(chunk))
            column = "rowid" if _sqlite() else "id"
            suffix = "fts" if _sqlite() else "idx"
            cursor.execute(f"DELETE FROM {table}_{suffix} WHERE {column} IN ({marks})", chunk)


# -- search -----------------------------------------------------------------------------------

def _fts_quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts_query(scopes: Sequence[str], terms: Sequence[Term]) -> str:
    def term(t: Term) -> str:
        column = "singles" if t.unigram else "grams"
        return f"{column} : {' + '.join(map(_fts_quote, t.tokens))}"  # "a" + "b": a phrase
    scope_part = " OR ".join(f"scope : {_fts_quote(s)}" for s in scopes)
    return f"({scope_part}) AND ({' OR '.join(map(term, terms))})"


def _ts_query(terms: Sequence[Term]) -> str:
    def lexeme(token: str, weight: str) -> str:
        return "'" + token.replace("'", "''").replace("\\", "\\\\") + "':" + weight
    parts = []
    for t in terms:
        weight = "B" if t.unigram else "A"
        parts.append("(" + " <-> ".join(lexeme(token, weight) for token in t.tokens) + ")")
    return " | ".join(parts)


def search(table: str, scopes: Sequence[str], text: str, limit: int) -> list[tuple[int, float]]:
    """(pk, score) of the best matches among rows of these scopes, best first; higher is better."""
    terms = query_terms(text)
    if not terms or not scopes:
        return []
    with connection.cursor() as cursor:
        if _sqlite():
            cursor.execute(
                f"SELECT rowid, -bm25({table}_fts, 0.0, 1.0, 0.5) AS score FROM {table}_fts "
                f"WHERE {table}_fts MATCH %s ORDER BY bm25({table}_fts, 0.0, 1.0, 0.5) LIMIT %s",
                [_fts_query(scopes, terms), limit],
            )
        else:
            cursor.execute(
                f"SELECT id, ts_rank(doc, q) AS score FROM {table}_idx, to_tsquery('simple', %s) q "
                "WHERE scope = ANY(%s) AND doc @@ q ORDER BY score DESC, id DESC LIMIT %s",
                [_ts_query(terms), list(scopes), limit],
            )
        return [(pk, float(score)) for pk, score in cursor.fetchall()]
