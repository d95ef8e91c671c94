"""The migration history table exactly as the Supabase CLI keeps it."""

from pathlib import Path

import psycopg

from kit import db
from kit.migrations.workdir import Migration
from kit.statements import split_statements

SCHEMA_SQL = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations "
    "(version text not null primary key, statements text[], name text)",
)
INSERT_SQL = "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)"


def ensure_table(conn: psycopg.Connection) -> None:
    for statement in SCHEMA_SQL:
        conn.execute(statement)


# The two reads of applied_versions, for a caller's batch: VERSIONS only when EXISTS said so.
EXISTS = ("select to_regclass('supabase_migrations.schema_migrations') is not null", None)
VERSIONS = ("select version from supabase_migrations.schema_migrations", None)


def applied_versions(conn: psycopg.Connection) -> list[str]:
    """Versions recorded in the history table, oldest first; empty if there is no table."""
    if not db.one(conn, EXISTS[0]):
        return []
    return versions(conn.execute(VERSIONS[0]).fetchall())


def versions(rows: list[tuple]) -> list[str]:
    """VERSIONS' rows, oldest first."""
    return sorted((r[0] for r in rows), key=int)


def with_versions(conn: psycopg.Connection, statements: list) -> tuple[list[list], list[str]]:
    """`statements`, then the history's versions, in one round trip: their results, and the versions (none when
    there is no history table: the read of it, sent last, fails alone)."""
    try:
        results = db.batch(conn, [*statements, VERSIONS])
    except db.BatchFailed as failed:
        if failed.index == len(statements) and isinstance(failed.error, psycopg.errors.UndefinedTable):
            return failed.results, []
        raise failed.error from None
    return results[:-1], versions(results[-1])


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
