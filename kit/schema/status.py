"""`kit status`: the phase, the pending migrations and the blockers, without changing anything."""

from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from kit.migrations import history, workdir
from kit.schema import catalog, locks, pieces
from kit.settings import Settings

CHANGE_MIGRATION = "llm_name_keys"
BLOCKERS_SQLSTATE = "KB001"


@dataclass
class Status:
    phase: str
    pending: list[str]
    blockers: list[str]
    applied: list[str]
    unknown_remote: list[str]
    suggestions: list[str] = field(default_factory=list)
    locked_by: str | None = None  # the sessions whose lock kept status from reading everything

    @property
    def blockers_note(self) -> str | None:
        """Why the blockers are not listed, when they could not be read without waiting."""
        if self.locked_by is None:
            return None
        return f"not checked: the LLM tables are locked by {self.locked_by}; run kit status again when it ends"


def phase(cat: catalog.Catalog) -> str:
    """absent, before, partial or migrated."""
    if not cat.tables:
        return "absent"
    if len(cat.tables) < len(catalog.TABLES):
        return "partial"
    left = cat.uuid_columns_left()
    keyed = [t for t in ("llm_providers", "llm_models") if cat.tables[t].primary_key == ["name"]]
    if not left and len(keyed) == 2 and not usage_foreign_keys(cat) and names_not_null(cat):
        return "migrated"
    all_uuid = sum(len(c) for c in catalog.UUID_COLUMNS.values())
    if len(left) == all_uuid and not keyed:
        return "before"
    return "partial"


def usage_foreign_keys(cat: catalog.Catalog) -> list[catalog.ForeignKey]:
    """llm_usage's foreign keys to a lookup table's UUID: the ones the migration removes."""
    return [fk for fk in cat.foreign_keys if fk.table == "llm_usage" and (
        set(fk.columns) & {"provider_id", "model_id"} or (fk.ref_table in ("llm_providers", "llm_models")
                                                          and "id" in fk.ref_columns))]


def names_not_null(cat: catalog.Catalog) -> bool:
    usage = cat.tables["llm_usage"].columns
    return all(c in usage and usage[c].not_null for c in ("provider_name", "model_name"))


SUGGESTION = "llm name keys: suggestion: "


# Status reads under ACCESS SHARE only and queues behind nobody: a lock it cannot have at once (another
# session's ACCESS EXCLUSIVE, or a request for one queued ahead of it) means "not checked", not a wait.
LOCK_TIMEOUT_MS = 50
# For a copy of the migration from before it stopped in READ ONLY transactions: one short lock attempt.
OLDER_COPY_SETTINGS = (("kit.lock_wait_s", "0"), ("kit.lock_timeout_ms", "1"))


def blockers(conn: psycopg.Connection, settings: Settings, notes: list[str] | None = None) -> list[str]:
    """The change migration's own blocker list (its suggestions go to `notes`), in a transaction always rolled back.

    The file's steps are pg_temp functions: their definitions run first (CREATE FUNCTION needs a
    read-write transaction), then the transaction turns READ ONLY and only pg_temp.llm_check() runs,
    which reads the state and raises KB001 naming every blocker, or the suggestions as notices. An older
    copy of the file, one DO block that returns after its blockers in a READ ONLY transaction, runs whole,
    read only from its start. Either way PostgreSQL refuses any write and nothing is kept; the list is
    the migration's own rather than a copy that could drift from it. A lock that is not free at once
    raises psycopg.errors.LockNotAvailable instead of a wait.
    """
    change = next((m for m in workdir.migrations(settings) if m.name == CHANGE_MIGRATION), None)
    if change is None:
        return []

    def note(diag) -> None:
        if notes is not None and (diag.message_primary or "").startswith(SUGGESTION):
            notes.append(diag.message_primary.removeprefix(SUGGESTION))

    conn.add_notice_handler(note)
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(f"{LOCK_TIMEOUT_MS}ms")))
            if pieces.CHECK in pieces.definitions(change.sql):
                _check(conn, change.sql)
            else:
                _run_older_copy(conn, change.sql)
    except psycopg.errors.LockNotAvailable:
        raise
    except psycopg.Error as exc:
        diag = exc.diag
        if diag.sqlstate == BLOCKERS_SQLSTATE and diag.message_detail:
            return diag.message_detail.split("\n")
    finally:
        conn.remove_notice_handler(note)
    return []


def _check(conn: psycopg.Connection, text: str) -> None:
    pieces.load(conn, text)
    conn.execute("set transaction read only")  # allowed after statements; READ WRITE would not be
    conn.execute(pieces.CHECK_SQL)


def _run_older_copy(conn: psycopg.Connection, text: str) -> None:
    conn.execute("set transaction read only")
    for name, value in OLDER_COPY_SETTINGS:
        conn.execute("select set_config(%s, %s, true)", (name, value))
    for statement in history.split_statements(text):
        conn.execute(statement.encode(), prepare=False)


def read(conn: psycopg.Connection, settings: Settings) -> Status:
    """The phase, the history and the blockers, under ACCESS SHARE locks that it never waits for.

    When a lock is not free at once (someone holds ACCESS EXCLUSIVE on an LLM table), what could not
    be read stays unknown and `locked_by` names the sessions holding it.
    """
    local = [m.version for m in workdir.migrations(settings)]
    applied = history.applied_versions(conn)
    st = Status("unknown", [v for v in local if v not in applied], [], applied, [v for v in applied if v not in local])
    with _no_waiting(conn):
        try:
            st.phase = phase(catalog.read(conn))  # pg_get_expr takes ACCESS SHARE
            if st.phase in ("before", "partial"):
                st.blockers = blockers(conn, settings, st.suggestions)
        except psycopg.errors.LockNotAvailable:
            st.locked_by = _in_the_way(conn)
    return st


def read_phase(conn: psycopg.Connection) -> str:
    """The phase, without waiting for a lock: `unknown (...)` naming the holders when one is taken."""
    with _no_waiting(conn):
        try:
            return phase(catalog.read(conn))
        except psycopg.errors.LockNotAvailable:
            return f"unknown (the LLM tables are locked by {_in_the_way(conn)})"


@contextmanager
def _no_waiting(conn: psycopg.Connection):
    previous = conn.execute("select current_setting('lock_timeout')").fetchone()[0]
    conn.execute("select set_config('lock_timeout', %s, false)", (f"{LOCK_TIMEOUT_MS}ms",))
    try:
        yield
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("select set_config('lock_timeout', %s, false)", (previous,))


def _in_the_way(conn: psycopg.Connection) -> str:
    """The sessions holding or queued for ACCESS EXCLUSIVE on an LLM table: the ones a reader waits for."""
    return locks.holders(conn, locks.ACCESS_SHARE) or "a session that has since finished"
