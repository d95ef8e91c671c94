"""Clients that still use the UUID columns, found in pg_stat_statements before the migration drops them.

After the migration such a client's request never reaches PostgreSQL (PostgREST answers PGRST204,
a query gets 42703), so it is invisible from the database. Before it, pg_stat_statements holds
each statement's normalized text, role and call count. The kit's own statements carry MARK, which
the query in kit/sql/legacy_statements.sql leaves out; so do DDL, DO blocks (the migration itself)
and pg_dump's whole-table COPY.
"""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from kit import db

QUERY_FILE = Path(__file__).parents[1] / "sql" / "legacy_statements.sql"
HIDDEN_TEXT = "<insufficient privilege>"
SINCE_RESET = "since the last reset"
ENABLE = ("create extension pg_stat_statements with schema extensions (Dashboard > Database > Extensions; "
          "it must also be in shared_preload_libraries, as on every Supabase project)")


@dataclass
class Statement:
    query: str
    calls: int
    role: str
    mean_ms: float
    stats_since: str | None
    since: str


@dataclass
class Legacy:
    """What pg_stat_statements says; `note` is one line when it cannot say everything."""

    available: bool
    schema: str | None = None
    statements: list[Statement] = field(default_factory=list)
    note: str | None = None

    @property
    def reset_sql(self) -> str:
        return sql.SQL("select {}.pg_stat_statements_reset()").format(
            sql.Identifier(self.schema or "extensions")).as_string(None)

    def as_list(self) -> list[dict]:
        return [asdict(s) for s in self.statements]


# Where pg_stat_statements is installed (no row: it is not): the first read, for a caller's batch.
SCHEMA = ("select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace "
          "where e.extname = 'pg_stat_statements'", None)


def query_sql(schema: str = "extensions") -> sql.Composed:
    return sql.SQL(QUERY_FILE.read_text()).format(schema=sql.Identifier(schema))


def statements(schema: str) -> list[tuple]:
    """The second read, once SCHEMA has found the extension: the statements, then how many texts are hidden."""
    hidden = sql.SQL("select count(*) from {}.pg_stat_statements where query = %s and dbid = "
                     "(select oid from pg_database where datname = current_database())").format(sql.Identifier(schema))
    return [(query_sql(schema), None), (hidden, (HIDDEN_TEXT,))]


def read(conn: psycopg.Connection) -> Legacy:
    """The statements that still use the UUID columns; never raises for a missing pg_stat_statements."""
    found = db.batch(conn, [SCHEMA])[0]
    if not found:
        return absent()
    try:
        return from_rows(conn, found[0][0], *db.batch(conn, statements(found[0][0])))
    except db.BatchFailed as failed:
        return unreadable(conn, found[0][0], failed.error)


def absent() -> Legacy:
    return Legacy(False, note=f"pg_stat_statements is not installed, so clients still using the UUID columns "
                              f"cannot be listed; to enable it: {ENABLE}")


def unreadable(conn: psycopg.Connection, schema: str, exc: psycopg.Error) -> Legacy:
    """What a failed read of statements(schema) means; the error itself when it is neither known case."""
    if isinstance(exc, psycopg.errors.ObjectNotInPrerequisiteState):
        return Legacy(False, schema, note="pg_stat_statements is installed but not loaded, so clients still using "
                                          "the UUID columns cannot be listed; add pg_stat_statements to shared_"
                                          "preload_libraries and restart PostgreSQL (Supabase loads it by default)")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Legacy(False, schema, note=f"{conn.info.user} cannot read {schema}.pg_stat_statements "
                                          f"({exc.diag.message_primary}), so clients still using the UUID columns "
                                          f"cannot be listed; connect as postgres, or grant usage on schema {schema}")
    raise exc


def from_rows(conn: psycopg.Connection, schema: str, rows: list, hidden_rows: list) -> Legacy:
    statements_ = [Statement(query=q, calls=calls, role=role or "(dropped role)", mean_ms=float(mean),
                             stats_since=since, since=f"since {since}" if since else SINCE_RESET)
                   for role, calls, mean, since, q in rows]
    hidden = hidden_rows[0][0]
    note = None
    if hidden:
        note = (f"the text of {hidden} statement(s) of other roles is hidden from this role, so they cannot be "
                f"checked; run `grant pg_read_all_stats to {conn.info.user};` to see them")
    return Legacy(True, schema, statements_, note)


def refusal(found: Legacy, expanded: bool = False) -> str:
    """The preflight's one-line refusal, naming each statement and the ways out: on an expanded database, before
    the contract; else before the one-step change, where the two steps are one of them."""
    listed = "; ".join(f"[{s.calls} calls by {s.role}] {s.query}" for s in found.statements)
    if expanded:
        return (f"{len(found.statements)} statement(s) in pg_stat_statements still use the UUID columns, and their "
                f"clients will fail once the contract drops them: {listed}. The LLM tables are expanded, so those "
                f"clients work until then: fix them (send provider_name and model_name instead of provider_id and "
                f"model_id), reset the counts with `{found.reset_sql}` and deploy again once they stay away; or pass "
                f"--allow-legacy-statements")
    return (f"{len(found.statements)} statement(s) in pg_stat_statements still use the UUID columns, and their "
            f"clients will fail once the migration drops them: {listed}. Either fix those clients (stop sending "
            f"provider_id and model_id, which works before and after the migration), then reset the counts with "
            f"`{found.reset_sql}`; or change in two steps: `kit deploy --expand` now (those clients keep working), "
            f"`kit deploy` once they are gone; or pass --allow-legacy-statements")


def summary_line(found: Legacy) -> str:
    """One line for `kit status` and the deploy summary."""
    if not found.available:
        return found.note or "unknown"
    if not found.statements:
        return "none" + (f" ({found.note})" if found.note else "")
    since = found.statements[0].since
    text = f"{len(found.statements)} statement(s) still use the UUID columns (counts {since})"
    return text + (f"; {found.note}" if found.note else "")
