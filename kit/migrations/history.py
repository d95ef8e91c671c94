"""The migration history table exactly as the Supabase CLI keeps it."""

from pathlib import Path

import psycopg

from kit.migrations.workdir import Migration

SCHEMA_SQL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations "
    "(version text not null primary key, statements text[], name text)",
)
INSERT_SQL = "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)"


def split_statements(sql: str) -> list[str]:
    """Split a file the way the Supabase CLI does: on top-level semicolons, trimmed, semicolons dropped."""
    statements, current, i, n = [], [], 0, len(sql)
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


def ensure_table(conn: psycopg.Connection) -> None:
    for statement in SCHEMA_SQL:
        conn.execute(statement)


def applied_versions(conn: psycopg.Connection) -> list[str]:
    """Versions recorded in the history table, oldest first; empty if there is no table."""
    exists = conn.execute("select to_regclass('supabase_migrations.schema_migrations') is not null").fetchone()[0]
    if not exists:
        return []
    rows = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    return sorted((r[0] for r in rows), key=int)


def apply(conn: psycopg.Connection, migration: Migration) -> None:
    """Run one file and write its history row in one transaction, statement by statement as the CLI does."""
    statements = split_statements(migration.sql)
    with conn.transaction():
        ensure_table(conn)
        for statement in statements:
            conn.execute(statement.encode(), prepare=False)
        conn.execute(INSERT_SQL, (migration.version, migration.name, statements))


def missing_advice(missing: list[str], folder: Path | None) -> str:
    """One line for a database whose history has versions the folder lacks: what is missing, and the
    safe ways on. Those versions are the database's real history, so it never suggests marking them reverted."""
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    where = f"{folder}/supabase/migrations" if folder else "the local supabase/migrations"
    return (f"the database's migration history has {len(missing)} version(s) that {where} lacks: {shown}; "
            "nothing was changed: run the kit from the repo that has them (cd there, or pass "
            "--workdir ../your-app; `kit init --workdir ../your-app` adds the change there), or copy them here "
            "with `npx supabase migration fetch`; do not mark versions that are in the database as reverted")
