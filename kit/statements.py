"""SQL text as statements: split the way the Supabase CLI splits a file, and marked as the kit's own.

Every statement the kit sends carries MARK (db.connect uses MarkedCursor), so that the legacy-client
check (kit/schema/legacy.py) never lists the kit's own statements.
"""

import re

import psycopg
from psycopg import sql

MARK = "/* supabase-kit */"
# Leading blanks and comments, then the first word: MARK goes after that word, since PostgreSQL 18
# drops a statement's leading comments from the text pg_stat_statements keeps.
_FIRST_WORD = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*[A-Za-z_]+", re.S)


def split_statements(sql: str) -> list[str]:
    """Split a file the way the Supabase CLI does: on top-level semicolons, trimmed, semicolons dropped."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        end = _skip_quoted(sql, i)
        if end > i:
            current.append(sql[i:end])
            i = end
            continue
        if ch == ";":
            _emit(statements, current)
            current = []
        else:
            current.append(ch)
        i += 1
    _emit(statements, current)
    return statements


def _emit(statements: list[str], parts: list[str]) -> None:
    text = "".join(parts).strip()
    if text:
        statements.append(text)


def _skip_quoted(sql: str, i: int) -> int:
    """End index of the quoted string, comment or dollar-quoted body that starts at i, else i."""
    ch, rest = sql[i], sql[i:i + 2]
    if rest == "--":
        end = sql.find("\n", i)
        return len(sql) if end < 0 else end
    if rest == "/*":
        depth, j = 0, i
        while j < len(sql):
            if sql.startswith("/*", j):
                depth, j = depth + 1, j + 2
            elif sql.startswith("*/", j):
                depth, j = depth - 1, j + 2
                if depth == 0:
                    return j
            else:
                j += 1
        return len(sql)
    if ch in "'\"":
        j = i + 1
        while j < len(sql):
            if sql[j] == ch:
                if sql[j + 1:j + 2] == ch:
                    j += 2
                    continue
                return j + 1
            j += 1
        return len(sql)
    if ch == "$":
        tag_end = sql.find("$", i + 1)
        tag = sql[i:tag_end + 1] if tag_end > 0 else ""
        if tag and (tag == "$$" or tag[1:-1].replace("_", "a").isalnum()) and not tag[1:2].isdigit():
            close = sql.find(tag, tag_end + 1)
            return len(sql) if close < 0 else close + len(tag)
    return i


def mark(query):
    """`query` (str, bytes or psycopg.sql) with MARK after the first word of each statement."""
    if isinstance(query, bytes):
        return mark(query.decode()).encode()
    if not isinstance(query, str):
        return query
    parts = split_statements(query) if ";" in query else [query]
    if len(parts) > 1:
        return "\n;\n".join(_mark_one(p) for p in parts)  # own line: a part may end in a -- comment
    return _mark_one(query)


def _mark_one(statement: str) -> str:
    found = _FIRST_WORD.match(statement)
    if not found:
        return statement if statement.startswith(MARK) else f"{MARK} {statement}"
    head, tail = statement[:found.end()], statement[found.end():]
    return statement if tail.startswith(f" {MARK}") else f"{head} {MARK}{tail}"


class MarkedCursor(psycopg.Cursor):
    """A cursor that marks every statement it sends as the kit's own."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(mark(self._text(query)), params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        return super().executemany(mark(self._text(query)), params_seq, **kwargs)

    def copy(self, statement, params=None, **kwargs):
        return super().copy(mark(self._text(statement)), params, **kwargs)

    def stream(self, query, params=None, **kwargs):
        return super().stream(mark(self._text(query)), params, **kwargs)

    def _text(self, query):
        return query.as_string(self) if isinstance(query, sql.Composable) else query


class MarkedAsyncCursor(psycopg.AsyncCursor):
    """MarkedCursor for async connections."""

    async def execute(self, query, params=None, **kwargs):
        return await super().execute(mark(query.as_string(self) if isinstance(query, sql.Composable) else query),
                                     params, **kwargs)
