"""`kit rollback`: undo the name-key migration in place with the backup's UUID maps, losing no row.

In place it runs in four short transactions so that inserts keep flowing:
  A. under the polite lock (100 ms attempts): the UUID columns come back, providers and models get
     their original UUIDs (new ones get fresh UUIDs), llm_usage gets empty link columns;
  B. with an UPDATE's weak locks only: each usage row the backup holds gets exactly the links it
     recorded (NULL too), found by llm_usage's own primary key whatever its type or arity; rows
     written since are linked through their names (see kit/rollback/links.py for a table without key);
  C. under the polite lock: rows written meanwhile are linked, keys, constraints and indexes are
     put back as the backup recorded them (foreign keys NOT VALID), the migration's history row goes;
  D. the foreign keys are validated, which does not block inserts.
Each step checks what is still needed, so a rollback that stopped half-way finishes when run again.

A backup taken while the tables were expanded (the first of the two steps) holds the UUID maps too: the
rollback then restores that expanded shape, puts the expand's fill triggers back (the expand file's own
step) and removes only the history rows of the changes that drop the UUID columns (contract, one step).
From a backup taken before any step it also drops the fill triggers and every change's history row.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from kit import db
from kit.backup import identity, manifest
from kit.backup.contents import Manifest
from kit.errors import BackupError, ConnectError, KitError, Refused, RollbackStepFailed
from kit.migrations import workdir
from kit.rollback import links as rollback_links, shape as rollback_shape
from kit.schema import catalog, locks, pieces, status
from kit.schema.phases import Phase
from kit.settings import Settings

WAIT_S = 300.0
# Columns the migration adds; any other column found now but absent from the backup is kept.
MIGRATION_COLUMNS = {("llm_models", "provider_name")}
T = TypeVar("T")
Say = Callable[[str], Any]


@dataclass
class Outcome:
    """What a rollback in place did: the phase before and after, and, when it changed anything, how the usage
    rows got their links back and which history row it removed."""

    phase_before: Phase
    phase: Phase
    changed: bool
    history_removed: str | None = None
    usage_rows: int = 0
    linked: rollback_links.Linked | None = None
    linked_by_name: int = 0
    unprovable: list[rollback_links.Unprovable] = field(default_factory=list)

    @property
    def unprovable_rows(self) -> int:
        return sum(u.rows_now for u in self.unprovable)

    def as_dict(self) -> dict[str, Any]:
        if self.linked is None:
            return {"phase_before": self.phase_before, "phase": self.phase, "changed": self.changed,
                    "history_removed": self.history_removed}
        return {"phase_before": self.phase_before, "phase": self.phase, "changed": self.changed,
                "usage_rows": self.usage_rows, **self.linked.as_dict(), "linked_by_name": self.linked_by_name,
                "unprovable": [u.as_dict() for u in self.unprovable], "unprovable_rows": self.unprovable_rows,
                "history_removed": self.history_removed}


def in_place(settings: Settings, path: Path | str, wait_s: float = WAIT_S, progress: Say | None = None) -> Outcome:
    say = progress or (lambda message: None)
    data = manifest.load(Path(path))
    if not data.maps:
        raise BackupError(f"{path} was taken after the migration and holds no UUID maps: roll back with a "
                          "backup taken before it (kit deploy takes one)")
    db.refuse_transaction_pooler(settings)
    with db.session(settings) as conn:
        identity.require_same(conn, settings, data, path)
        before = status.phase(catalog.read(conn))
        if before == Phase.BEFORE and backup_phase(data) == Phase.BEFORE:
            _in_transaction(conn, lambda: _validate(conn))  # a rollback stopped before its last step
            return Outcome(before, before, changed=False)
        if before == Phase.ABSENT:
            raise Refused("the LLM tables do not exist here: nothing to roll back in place (see --full)")
        try:
            return _steps(conn, settings, Path(path), data, wait_s, say, before)
        except psycopg.Error as exc:  # outside a step's transaction: the checks and reads between them
            if db.connection_lost(conn):
                raise _lost(exc) from None
            raise RollbackStepFailed(f"the rollback stopped: {db.error_line(exc)}; fix that, then run kit rollback "
                                     "again (finished steps are kept)") from None


def backup_phase(data: Manifest) -> Phase:
    """`expanded` when the backup's llm_providers was keyed by name with its UUIDs still there, else `before`."""
    keyed = any(row[0] == "constraint" and catalog.bare(row[1]) == "llm_providers" and row[3] == "p"
                and row[4] == "PRIMARY KEY (name)" for row in data.shape)
    return Phase.EXPANDED if keyed else Phase.BEFORE


def _lost(exc: psycopg.Error) -> ConnectError:
    return ConnectError(f"the connection was lost during the rollback ({db.error_line(exc)}); the step it was in was "
                        "undone and the finished ones are kept: run kit rollback again to finish")


def _steps(conn: psycopg.Connection, settings: Settings, path: Path, data: Manifest, wait_s: float, say: Say,
           before: Phase) -> Outcome:
    original = data.shape
    conn.execute("set statement_timeout = 0")
    cat = catalog.read(conn)
    rollback_links.check_key(cat.tables["llm_usage"].primary_key, data)
    refuse_dependents(conn, original)
    say("A: UUID columns and the original provider and model UUIDs")
    _locked(conn, wait_s, _restore_ids(cat, data, original))
    say("B: linking usage rows (inserts keep flowing)")
    linked, by_name = _in_transaction(conn, lambda: _link_usage(conn, Path(path), data))
    say("C: keys, constraints and indexes as the backup recorded them")
    finish, counted, forget = _finish(conn, settings, data, original)
    done = _locked(conn, wait_s, finish + forget)
    late = rollback_links.by_name_count(done[counted:counted + 2])
    removed = ", ".join(sorted(r[0] for r in done[len(finish)])) if forget else None
    say("D: validating foreign keys")
    _in_transaction(conn, lambda: _validate(conn))
    unproven = rollback_links.unprovable(conn, data)
    rollback_links.drop(conn)
    rows = db.one(conn, "select count(*) from public.llm_usage")
    after = status.phase(catalog.read(conn))
    return Outcome(before, after, True, removed or None, rows, linked, by_name + late, unproven)


def refuse_dependents(conn: psycopg.Connection, original: list[list[str]]) -> None:
    """Refuse (exit 4) before step A when an object of the team's (a view, a policy, a function) uses a
    column or key the rollback drops: PostgreSQL would stop step C there, with the tables half rolled back."""
    found = rollback_shape.blockers(conn, original, MIGRATION_COLUMNS)
    if found:
        raise Refused(f"refusing to roll back, nothing was changed: {len(found)} object(s) depend on what the "
                      f"rollback drops: {'; '.join(found)}; drop them (keep their definitions), run kit rollback "
                      "again, then recreate them to fit the UUID-keyed tables")


def _link_usage(conn: psycopg.Connection, folder: Path, data: Manifest) -> tuple[rollback_links.Linked, int]:
    rollback_links.load(conn, folder, data)
    linked = rollback_links.link_recorded(conn, data)
    return linked, rollback_links.link_by_name(conn, data)


def _finish(conn: psycopg.Connection, settings: Settings, data: Manifest,
            original: list[list[str]]) -> tuple[list[tuple], int, list[tuple]]:
    """Step C's statements (and where its by-name counts are), read and built before its lock (nothing they
    depend on changes until they run): the UUIDs of lookup rows added during step B, then the rows written
    meanwhile linked through their names (with their counts), the fill triggers as the backup's phase had
    them, the recorded shape; then the history."""
    target = backup_phase(data)
    statements = [("update public.llm_providers set id = gen_random_uuid() where id is null", None),
                  ("update public.llm_models set id = gen_random_uuid() where id is null", None),
                  *_link_models(catalog.read(conn), data)]
    counted = len(statements)  # where the two statements that link by name, and count, begin
    statements += rollback_links.by_name_statements(data)
    if target == Phase.BEFORE:
        statements += _fill_step(workdir.CONTRACT, "llm_fill_drop", ("llm_fill_functions", "llm_fill_drop"))
    statements += rollback_shape.restore(conn, original, MIGRATION_COLUMNS)
    if target == Phase.EXPANDED:
        statements += _fill_step(workdir.EXPAND, "llm_fill_create", ("llm_fill_create",))
    return statements, counted, _forget_migration(conn, settings, target)


def _fill_step(template: str, step: str, needs: tuple[str, ...]) -> list[tuple]:
    """One of the two-step files' own steps on the fill triggers: its definitions from the file's text, the call."""
    steps = pieces.definitions(workdir.template(template))
    return [*[(steps[name].encode(), None) for name in needs],
            (sql.SQL("select pg_temp.{}()").format(sql.Identifier(step)), None)]


def _locked(conn: psycopg.Connection, wait_s: float, statements: list[tuple]) -> list[list]:
    """The statements in one transaction that first locks the three tables (100 ms per attempt), sent in one
    flight: the lock is held for the server's time, not for round trips. Their results."""
    try:
        return locks.locked_batch(conn, wait_s, statements)
    except locks.LockWaitOver as over:
        raise Refused(f"could not lock the LLM tables in {wait_s:g} s ({over.attempts} attempts); held by "
                      f"{over.holders or 'sessions that have since finished'}. Nothing of this step was changed: "
                      "run kit rollback again when those sessions end") from None
    except db.BatchFailed as failed:
        raise RollbackStepFailed("the rollback stopped and this step was undone: "
                                 f"{failed.error.diag.message_primary or failed.error}; fix that, then run kit "
                                 "rollback again (finished steps are kept)") from None
    except psycopg.Error as exc:
        if db.connection_lost(conn):
            raise _lost(exc) from None
        raise


def _in_transaction(conn: psycopg.Connection, work: Callable[[], T]) -> T:
    conn.execute("begin")
    return _body(conn, work)


def _body(conn: psycopg.Connection, work: Callable[[], T]) -> T:
    try:
        result = work()
        conn.execute("commit")
        return result
    except BaseException as exc:
        if not db.connection_lost(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("rollback")
        if isinstance(exc, psycopg.Error) and db.connection_lost(conn):
            raise _lost(exc) from None
        if isinstance(exc, psycopg.Error):
            raise RollbackStepFailed("the rollback stopped and this step was undone: "
                                     f"{exc.diag.message_primary or exc}; fix that, then run kit rollback again "
                                     "(finished steps are kept)") from None
        raise


def _restore_ids(cat: catalog.Catalog, data: Manifest, original: list[list[str]]) -> list[tuple]:
    """Step A's statements, from the catalog read before its lock: the UUID columns back with their recorded
    type and default (NOT NULL comes back in step C), the usage names nullable again where the backup had them
    so (an old client's insert with only UUIDs works from here on), the lookup rows' original UUIDs (new rows get
    fresh ones), and the models' provider UUIDs."""
    cols = rollback_shape.columns(original)
    out: list[tuple] = []
    for table, names in catalog.UUID_COLUMNS.items():
        target = sql.SQL("alter table {} ").format(sql.Identifier("public", table))
        for name in names:
            spec = cols[(table, name)][1]
            if not cat.has(table, name):
                out.append((target + sql.SQL("add column {} {}").format(
                    sql.Identifier(name), sql.SQL(spec.partition(" default ")[0])), None))
            default = spec.partition(" default ")[2]
            if default and table != "llm_usage":
                out.append((target + sql.SQL("alter column {} set default {}").format(
                    sql.Identifier(name), sql.SQL(default)), None))
    usage = cat.tables["llm_usage"].columns
    out += [(sql.SQL("alter table public.llm_usage alter column {} drop not null").format(sql.Identifier(name)), None)
            for name in ("provider_name", "model_name")
            if name in usage and usage[name].not_null and not cols.get(("llm_usage", name), (True, ""))[0]]
    maps = data.require_maps()
    models = maps.models.items()
    return [*out,
            ("update public.llm_providers p set id = k.id from unnest(%s::uuid[], %s::text[]) k (id, name) "
             "where p.id is null and p.name = k.name", (list(maps.providers), list(maps.providers.values()))),
            ("update public.llm_providers set id = gen_random_uuid() where id is null", None),
            ("update public.llm_models m set id = k.id from unnest(%s::uuid[], %s::text[]) k (id, name) "
             "where m.id is null and m.name = k.name", ([i for i, _ in models], [m.name for _, m in models])),
            ("update public.llm_models set id = gen_random_uuid() where id is null", None),
            *_link_models(cat, data)]


def _link_models(cat: catalog.Catalog, data: Manifest) -> list[tuple]:
    """Models without a provider UUID get their provider's, except those the backup recorded without one."""
    unlinked = [m.name for m in data.require_maps().models.values() if not m.provider_id]
    if not cat.has("llm_models", "provider_name"):
        return []
    return [("update public.llm_models m set provider_id = p.id from public.llm_providers p "
             "where m.provider_id is null and m.provider_name = p.name and m.name <> all(%s)", (unlinked,))]


def _validate(conn: psycopg.Connection) -> None:
    for table, name in conn.execute(
            "select conrelid, conname from pg_constraint where not convalidated and contype = 'f' "
            "and conrelid = any(array['public.llm_usage', 'public.llm_models']::regclass[])").fetchall():
        conn.execute(sql.SQL("alter table {} validate constraint {}").format(
            sql.Identifier(*_qualified(conn, table)), sql.Identifier(name)))


def _forget_migration(conn: psycopg.Connection, settings: Settings, target: Phase) -> list[tuple]:
    """The statements that remove the history rows of the changes undone (to an expanded backup: those that drop
    the UUID columns; else every step), so the next push applies them again: the delete gives the versions."""
    if not db.one(conn, "select to_regclass('supabase_migrations.schema_migrations')"):
        return []
    names = list(workdir.DROPS_UUIDS if target == Phase.EXPANDED else workdir.CHANGES)
    try:
        applied = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
        versions = [m.version for m in workdir.migrations(settings, applied) if m.name in names]
    except KitError:
        versions = []
    return [("delete from supabase_migrations.schema_migrations where version = any(%s) or name = any(%s) "
             "returning version", (versions, names)), ("notify pgrst, 'reload schema'", None)]


def _qualified(conn: psycopg.Connection, oid: int) -> tuple[str, str]:
    schema, name = db.one_row(conn, "select n.nspname, c.relname from pg_class c join pg_namespace n "
                                    "on n.oid = c.relnamespace where c.oid = %s", (oid,))
    return schema, name

