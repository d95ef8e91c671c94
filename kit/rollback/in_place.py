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
    rollback_links.check_key(catalog.read(conn).tables["llm_usage"].primary_key, data)
    refuse_dependents(conn, original)
    say("A: UUID columns and the original provider and model UUIDs")
    _locked(conn, wait_s, lambda: _restore_ids(conn, data, original))
    say("B: linking usage rows (inserts keep flowing)")
    linked, by_name = _in_transaction(conn, lambda: _link_usage(conn, Path(path), data))
    say("C: keys, constraints and indexes as the backup recorded them")
    removed, late = _locked(conn, wait_s, lambda: _finish(conn, settings, data, original))
    say("D: validating foreign keys")
    _in_transaction(conn, lambda: _validate(conn))
    unproven = rollback_links.unprovable(conn, data)
    rollback_links.drop(conn)
    rows = db.one(conn, "select count(*) from public.llm_usage")
    after = status.phase(catalog.read(conn))
    return Outcome(before, after, True, removed, rows, linked, by_name + late, unproven)


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
            original: list[list[str]]) -> tuple[str | None, int]:
    conn.execute("update public.llm_providers set id = gen_random_uuid() where id is null")
    conn.execute("update public.llm_models set id = gen_random_uuid() where id is null")
    _link_models(conn, data)
    late = rollback_links.link_by_name(conn, data)  # rows written during step B
    target = backup_phase(data)
    if target == Phase.BEFORE:
        _fill_step(conn, workdir.CONTRACT, "llm_fill_drop", ("llm_fill_functions", "llm_fill_drop"))
    rollback_shape.restore(conn, original, MIGRATION_COLUMNS)
    if target == Phase.EXPANDED:
        _fill_step(conn, workdir.EXPAND, "llm_fill_create", ("llm_fill_create",))
    return _forget_migration(conn, settings, target), late


def _fill_step(conn: psycopg.Connection, template: str, step: str, needs: tuple[str, ...]) -> None:
    """One of the two-step files' own steps on the fill triggers, defined from the file's text and called."""
    pieces.load(conn, workdir.template(template), only=needs)
    conn.execute(sql.SQL("select pg_temp.{}()").format(sql.Identifier(step)))


def _locked(conn: psycopg.Connection, wait_s: float, work: Callable[[], T]) -> T:
    """Run work in one transaction that first locks the three tables, 100 ms per attempt."""
    try:
        locks.lock_tables(conn, wait_s)
    except locks.LockWaitOver as over:
        raise Refused(f"could not lock the LLM tables in {wait_s:g} s ({over.attempts} attempts); held by "
                      f"{over.holders or 'sessions that have since finished'}. Nothing of this step was changed: "
                      "run kit rollback again when those sessions end") from None
    return _body(conn, work)


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


def _restore_ids(conn: psycopg.Connection, data: Manifest, original: list[list[str]]) -> None:
    cols = rollback_shape.columns(original)
    cat = catalog.read(conn)
    for table, names in catalog.UUID_COLUMNS.items():
        for name in names:
            spec = cols[(table, name)][1]
            target = sql.SQL("alter table {} ").format(sql.Identifier("public", table))
            if not cat.has(table, name):  # the recorded type; default and NOT NULL come back in step C
                conn.execute(target + sql.SQL("add column {} {}").format(
                    sql.Identifier(name), sql.SQL(spec.partition(" default ")[0])))
            default = spec.partition(" default ")[2]
            if default and table != "llm_usage":
                conn.execute(target + sql.SQL("alter column {} set default {}").format(
                    sql.Identifier(name), sql.SQL(default)))
    maps = data.require_maps()
    conn.execute("create temp table kit_providers (id uuid, name text) on commit drop")
    conn.execute("create temp table kit_models (id uuid, name text, provider_id uuid) on commit drop")
    with conn.cursor().copy("copy kit_providers from stdin") as copy:
        for pid, name in maps.providers.items():
            copy.write_row((pid, name))
    with conn.cursor().copy("copy kit_models from stdin") as copy:
        for mid, model in maps.models.items():
            copy.write_row((mid, model.name, model.provider_id))
    conn.execute("update public.llm_providers p set id = k.id from kit_providers k "
                 "where p.id is null and p.name = k.name")
    conn.execute("update public.llm_providers set id = gen_random_uuid() where id is null")
    conn.execute("update public.llm_models m set id = k.id from kit_models k where m.id is null and m.name = k.name")
    conn.execute("update public.llm_models set id = gen_random_uuid() where id is null")
    _link_models(conn, data)


def _link_models(conn: psycopg.Connection, data: Manifest) -> None:
    """Models without a provider UUID get their provider's, except those the backup recorded without one."""
    unlinked = [m.name for m in data.require_maps().models.values() if not m.provider_id]
    if catalog.read(conn).has("llm_models", "provider_name"):
        conn.execute("update public.llm_models m set provider_id = p.id from public.llm_providers p "
                     "where m.provider_id is null and m.provider_name = p.name and m.name <> all(%s)", (unlinked,))


def _validate(conn: psycopg.Connection) -> None:
    for table, name in conn.execute(
            "select conrelid, conname from pg_constraint where not convalidated and contype = 'f' "
            "and conrelid = any(array['public.llm_usage', 'public.llm_models']::regclass[])").fetchall():
        conn.execute(sql.SQL("alter table {} validate constraint {}").format(
            sql.Identifier(*_qualified(conn, table)), sql.Identifier(name)))


def _forget_migration(conn: psycopg.Connection, settings: Settings, target: Phase) -> str | None:
    """Remove the history rows of the changes undone (to an expanded backup: those that drop the UUID columns;
    else every step), so the next push applies them again."""
    if not db.one(conn, "select to_regclass('supabase_migrations.schema_migrations')"):
        return None
    names = list(workdir.DROPS_UUIDS if target == Phase.EXPANDED else workdir.CHANGES)
    try:
        applied = [r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")]
        versions = [m.version for m in workdir.migrations(settings, applied) if m.name in names]
    except KitError:
        versions = []
    rows = conn.execute("delete from supabase_migrations.schema_migrations where version = any(%s) or name = any(%s) "
                        "returning version", (versions, names)).fetchall()
    conn.execute("notify pgrst, 'reload schema'")
    return ", ".join(sorted(r[0] for r in rows)) or None


def _qualified(conn: psycopg.Connection, oid: int) -> tuple[str, str]:
    schema, name = db.one_row(conn, "select n.nspname, c.relname from pg_class c join pg_namespace n "
                                    "on n.oid = c.relnamespace where c.oid = %s", (oid,))
    return schema, name

