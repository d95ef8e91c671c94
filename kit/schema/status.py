"""`kit status`: the phase, the pending migrations and the blockers, without changing anything."""

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from kit import db
from kit.migrations import history, workdir
from kit.schema import catalog, legacy as legacy_mod, locks, pieces
from kit.schema.phases import UNFINISHED, Phase, PhaseReading
from kit.settings import Settings

CHANGE_MIGRATION = "llm_name_keys"
BLOCKERS_SQLSTATE = "KB001"


@dataclass
class Status:
    phase: Phase
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


def phase(cat: catalog.Catalog) -> Phase:
    """absent, before, partial, expanded or migrated."""
    if not cat.tables:
        return Phase.ABSENT
    if len(cat.tables) < len(catalog.TABLES):
        return Phase.PARTIAL
    left = cat.uuid_columns_left()
    keyed = [t for t in ("llm_providers", "llm_models") if cat.tables[t].primary_key == ["name"]]
    if not left and len(keyed) == 2 and not usage_foreign_keys(cat) and names_not_null(cat):
        return Phase.MIGRATED
    all_uuid = sum(len(c) for c in catalog.UUID_COLUMNS.values())
    if len(left) == all_uuid and not keyed:
        return Phase.BEFORE
    if len(left) == all_uuid and len(keyed) == 2 and expanded_shape(cat):
        return Phase.EXPANDED
    return Phase.PARTIAL


def expanded_shape(cat: catalog.Catalog) -> bool:
    """What the expand leaves besides the name keys: llm_models.provider_name NOT NULL and referencing
    llm_providers(name), no UUID foreign key from llm_usage, every UUID column nullable (an identity fills itself),
    the fill triggers (without them, e.g. a rollback stopped part-way, the phase is partial)."""
    provider = cat.tables["llm_models"].columns.get("provider_name")
    uuids = [cat.tables[t].columns[c] for t, cols in catalog.UUID_COLUMNS.items() for c in cols]
    fill = all(name in cat.tables[t].triggers for t, name in catalog.FILL_TRIGGERS.items())
    return (bool(provider and provider.not_null) and models_reference_providers(cat) and not usage_foreign_keys(cat)
            and not any(c.not_null and not c.identity for c in uuids) and fill)


def models_reference_providers(cat: catalog.Catalog) -> bool:
    """llm_models.provider_name references llm_providers(name), following a rename or a delete; no other key."""
    fks = [fk for fk in cat.foreign_keys if fk.table == "llm_models" and fk.ref_table == "llm_providers"]
    return len(fks) == 1 and (fks[0].columns, fks[0].ref_columns, fks[0].on_delete, fks[0].on_update) == (
        ["provider_name"], ["name"], "cascade", "cascade")


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


def check_file(settings: Settings, phase_now: Phase) -> workdir.Migration | None:
    """The change file whose own check lists the blockers of the next push: on an expanded database the contract;
    with --expand the expand file; else the folder's last change file (the one a push runs last)."""
    expanded = phase_now == Phase.EXPANDED
    view = workdir.migrations(settings, [workdir.KIT_VERSIONS[workdir.EXPAND]] if expanded else None)
    wanted = (workdir.CONTRACT,) if expanded else (workdir.EXPAND,) if settings.expand else workdir.CHANGES
    changes = [m for m in view if m.name in wanted]
    return changes[-1] if changes else None


def blocker_statements(settings: Settings, phase_now: Phase = Phase.BEFORE) -> list[tuple]:
    """The change migration's own blocker check, in a transaction always rolled back; [] when the folder has no
    change migration. Its suggestions come as notices, its blockers as one KB001 error (blockers_from).

    The file's steps are pg_temp functions: their definitions run first (CREATE FUNCTION needs a
    read-write transaction), then the transaction turns READ ONLY and only pg_temp.llm_check() runs,
    which reads the state and raises KB001 naming every blocker, or the suggestions as notices. An older
    copy of the file, one DO block that returns after its blockers in a READ ONLY transaction, runs whole,
    read only from its start. Either way PostgreSQL refuses any write and nothing is kept; the list is
    the migration's own rather than a copy that could drift from it. A lock that is not free at once
    fails with LockNotAvailable instead of a wait.
    """
    change = check_file(settings, phase_now)
    if change is None:
        return []
    timeout = (sql.SQL("set local lock_timeout = {}").format(sql.Literal(f"{LOCK_TIMEOUT_MS}ms")), None)
    steps = pieces.definitions(change.sql)
    check: list[tuple[Any, Any]]
    if pieces.CHECK in steps:
        check = [*[(statement.encode(), None) for statement in steps.values()],
                 ("set transaction read only", None),  # allowed after statements; READ WRITE would not be
                 (pieces.CHECK_SQL, None)]
    else:
        check = [("set transaction read only", None),
                 *[("select set_config(%s, %s, true)", setting) for setting in OLDER_COPY_SETTINGS],
                 *[(statement.encode(), None) for statement in history.split_statements(change.sql)]]
    return [("begin", None), timeout, *check, ("rollback", None)]


def blockers_from(failed: db.BatchFailed | None) -> list[str]:
    """The blocker list from how blocker_statements ended: the migration raises them as one KB001 error."""
    if failed is None:
        return []
    if isinstance(failed.error, psycopg.errors.LockNotAvailable):
        raise failed.error
    diag = failed.error.diag
    if diag.sqlstate == BLOCKERS_SQLSTATE and diag.message_detail:
        return diag.message_detail.split("\n")
    return []


@dataclass
class Survey:
    """What `kit status` and deploy's preflight read: the status, the clients still using the UUID columns, and
    the catalog (None when a lock kept it from being read)."""

    status: Status
    legacy: legacy_mod.Legacy
    catalog: catalog.Catalog | None


def survey(conn: psycopg.Connection, settings: Settings) -> Survey:
    """The phase, the history, the blockers and the legacy statements, in two round trips (three when
    pg_stat_statements cannot be read), under ACCESS SHARE locks that it never waits for.

    When a lock is not free at once (someone holds ACCESS EXCLUSIVE on an LLM table), what could not
    be read stays unknown and `locked_by` names the sessions holding it.
    """
    st = Status(Phase.UNKNOWN, [], [], [], [])
    first = _unhurried([history.EXISTS, legacy_mod.SCHEMA, *catalog.statements()])
    try:
        results = db.batch(conn, first)
    except db.BatchFailed as failed:
        if not isinstance(failed.error, psycopg.errors.LockNotAvailable):
            raise failed.error from None
        st.locked_by = _in_the_way(conn)
        has_history, schema, cat = bool(failed.results[2][0][0]), _schema(failed.results[3]), None
    else:
        cat = catalog.from_rows(results[4:4 + catalog.READS])
        has_history, schema = bool(results[2][0][0]), _schema(results[3])
        st.phase = phase(cat)
    versions = [history.VERSIONS] if has_history else []
    blocking = blocker_statements(settings, st.phase) if st.phase in UNFINISHED else []
    found, legacy_error, ended = _second(conn, versions, legacy_mod.statements(schema) if schema else [], blocking,
                                         st.suggestions)
    st.applied = history.versions(found[0]) if has_history else []
    local = [m.version for m in workdir.migrations(settings, st.applied)]
    st.pending = [v for v in local if v not in st.applied]
    st.unknown_remote = [v for v in st.applied if v not in local]
    if schema is None:
        legacy = legacy_mod.absent()
    elif legacy_error is not None:
        legacy = legacy_mod.unreadable(conn, schema, legacy_error)
    else:
        legacy = legacy_mod.from_rows(conn, schema, *found[len(versions):])
    try:
        st.blockers = blockers_from(ended)
    except psycopg.errors.LockNotAvailable:
        st.locked_by = _in_the_way(conn)
    return Survey(st, legacy, cat)


def _second(conn: psycopg.Connection, versions: list, legacy: list, blocking: list, notes: list[str]):
    """The history's versions, the legacy reads and the blockers' transaction in one flight; when a legacy read
    fails (pg_stat_statements not loaded, not readable), the blockers in a flight of their own.
    Returns (the reads' rows, the legacy read's error or None, the blockers' BatchFailed or None)."""
    reads = versions + legacy
    with _suggestions_to(conn, notes):
        try:
            return db.batch(conn, reads + blocking)[:len(reads)], None, None
        except db.BatchFailed as failed:
            if failed.index >= len(reads):
                return failed.results[:len(reads)], None, failed
            if failed.index < len(versions):
                raise failed.error from None
            found, legacy_error = failed.results, failed.error
        return found, legacy_error, _run_blockers(conn, blocking)


def blockers(conn: psycopg.Connection, settings: Settings, notes: list[str] | None = None,
             phase_now: Phase = Phase.BEFORE) -> list[str]:
    """The change migration's blocker list alone, its suggestions appended to `notes`: one round trip."""
    with _suggestions_to(conn, notes if notes is not None else []):
        return blockers_from(_run_blockers(conn, blocker_statements(settings, phase_now)))


def _run_blockers(conn: psycopg.Connection, blocking: list) -> db.BatchFailed | None:
    try:
        db.batch(conn, blocking)
    except db.BatchFailed as failed:
        return failed
    return None


@contextmanager
def _suggestions_to(conn: psycopg.Connection, notes: list[str]):
    """The migration's suggestion notices, appended to `notes` while the block runs."""
    def note(diag) -> None:
        if (diag.message_primary or "").startswith(SUGGESTION):
            notes.append(diag.message_primary.removeprefix(SUGGESTION))

    conn.add_notice_handler(note)
    try:
        yield
    finally:
        conn.remove_notice_handler(note)


def _schema(rows: list) -> str | None:
    return rows[0][0] if rows else None


def read(conn: psycopg.Connection, settings: Settings) -> Status:
    """The status part of survey()."""
    return survey(conn, settings).status


def read_phase(conn: psycopg.Connection) -> PhaseReading:
    """The phase, without waiting for a lock: `unknown` with the holders named when one is taken."""
    try:
        return PhaseReading(phase(catalog.from_rows(db.batch(conn, _unhurried(catalog.statements()))[2:-1])))
    except db.BatchFailed as failed:
        if not isinstance(failed.error, psycopg.errors.LockNotAvailable):
            raise failed.error from None
        return PhaseReading(Phase.UNKNOWN, holders=_in_the_way(conn))


def _unhurried(reads: list) -> list:
    """`reads` in one transaction that waits for no lock: one not free within LOCK_TIMEOUT_MS fails instead."""
    return [("begin", None), (f"set local lock_timeout = '{LOCK_TIMEOUT_MS}ms'", None), *reads, ("commit", None)]


def _in_the_way(conn: psycopg.Connection) -> str:
    """The sessions holding or queued for ACCESS EXCLUSIVE on an LLM table: the ones a reader waits for."""
    return locks.holders(conn, locks.ACCESS_SHARE) or "a session that has since finished"
