"""`kit rollback`: undo the name-key migration in place with the backup's UUID maps, losing no row.

In place it runs in four short transactions so that inserts keep flowing:
  A. under the polite lock (100 ms attempts): the UUID columns come back, providers and models get
     their original UUIDs (new ones get fresh UUIDs), llm_usage gets empty link columns;
  B. with an UPDATE's weak locks only: usage rows get their original links from the backup, and
     every other row is linked through its names;
  C. under the polite lock: rows written meanwhile are linked, keys, constraints and indexes are
     put back as the backup recorded them (foreign keys NOT VALID), the migration's history row goes;
  D. the foreign keys are validated, which does not block inserts.
Each step checks what is still needed, so a rollback that stopped half-way finishes when run again.
"""

import time
from pathlib import Path

import psycopg

from kit import catalog, db, identity, manifest, status, workdir
from kit.errors import BackupError, KitError, Refused
from kit.settings import Settings

LOCK_SQL = "lock table public.llm_usage, public.llm_models, public.llm_providers in access exclusive mode"
WAIT_S = 300.0
# Columns the migration adds; any other column found now but absent from the backup is kept.
MIGRATION_COLUMNS = {("llm_models", "provider_name")}


def in_place(settings: Settings, path, wait_s: float = WAIT_S, progress=None) -> dict:
    say = progress or (lambda message: None)
    data = manifest.load(Path(path))
    if not data.get("maps"):
        raise BackupError(f"{path} was taken after the migration and holds no UUID maps: roll back with a "
                          "backup taken before it (kit deploy takes one)")
    original = data["shape"]
    db.refuse_transaction_pooler(settings)
    with db.session(settings) as conn:
        identity.require_same(conn, settings, data, path)
        before = status.phase(catalog.read(conn))
        if before == "before":
            return {"phase_before": before, "phase": before, "changed": False, "history_removed": None}
        if before == "absent":
            raise Refused("the LLM tables do not exist here: nothing to roll back in place (see --full)")
        conn.execute("set statement_timeout = 0")
        say("A: UUID columns and the original provider and model UUIDs")
        _locked(conn, wait_s, lambda: _restore_ids(conn, data, original))
        say("B: linking usage rows (inserts keep flowing)")
        linked = _in_transaction(conn, lambda: _link_usage(conn, Path(path), data))
        say("C: keys, constraints and indexes as the backup recorded them")
        removed = _locked(conn, wait_s, lambda: _finish(conn, settings, original))
        say("D: validating foreign keys")
        _in_transaction(conn, lambda: _validate(conn))
        rows = conn.execute("select count(*) from public.llm_usage").fetchone()[0]
        after = status.phase(catalog.read(conn))
    return {"phase_before": before, "phase": after, "changed": True, "usage_rows": rows, **linked,
            "history_removed": removed}


def _locked(conn: psycopg.Connection, wait_s: float, work):
    """Run work in one transaction that first locks the three tables, 100 ms per attempt."""
    deadline, attempt = time.monotonic() + wait_s, 0
    while True:
        conn.execute("begin")
        try:
            conn.execute("set local lock_timeout = '100ms'")
            conn.execute(LOCK_SQL)
            break
        except psycopg.errors.LockNotAvailable:
            conn.execute("rollback")
            attempt += 1
            if time.monotonic() > deadline:
                raise Refused(f"could not lock the LLM tables in {wait_s:g} s ({attempt} attempts); held by "
                              f"{_holders(conn)}. Nothing of this step was changed: run kit rollback again "
                              "when those sessions end") from None
            time.sleep(min(0.05 * attempt, 1.0))
    return _body(conn, work)


def _in_transaction(conn: psycopg.Connection, work):
    conn.execute("begin")
    return _body(conn, work)


def _body(conn: psycopg.Connection, work):
    try:
        result = work()
        conn.execute("commit")
        return result
    except BaseException as exc:
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("rollback")
        if isinstance(exc, psycopg.Error):
            raise KitError(f"the rollback stopped and this step was undone: {exc.diag.message_primary or exc}; "
                           "fix that, then run kit rollback again (finished steps are kept)") from None
        raise


def _holders(conn: psycopg.Connection) -> str:
    rows = conn.execute(
        "select distinct a.pid, coalesce(nullif(a.application_name, ''), 'no name'), a.state from pg_locks l "
        "join pg_stat_activity a on a.pid = l.pid where l.granted and a.pid <> pg_backend_pid() and l.relation "
        "in ('public.llm_usage'::regclass, 'public.llm_models'::regclass, 'public.llm_providers'::regclass)").fetchall()
    return ", ".join(f"pid {p} ({n}, {s})" for p, n, s in rows) or "sessions that have since finished"


def _columns(original: list) -> dict[tuple[str, str], tuple[str, bool]]:
    """(table, column) -> (type and default, not null) as the backup recorded them."""
    return {(_bare(t), c): (spec, flag == "not null") for kind, t, c, flag, spec in original if kind == "column"}


def _restore_ids(conn: psycopg.Connection, data: dict, original: list) -> None:
    cols = _columns(original)
    cat = catalog.read(conn)
    for table, names in catalog.UUID_COLUMNS.items():
        for name in names:
            if not cat.has(table, name):
                conn.execute(f'alter table public.{table} add column "{name}" uuid')
            default = cols[(table, name)][0].partition(" default ")[2]
            if default and table != "llm_usage":
                conn.execute(f'alter table public.{table} alter column "{name}" set default {default}')
    maps = data["maps"]
    conn.execute("create temp table kit_providers (id uuid, name text) on commit drop")
    conn.execute("create temp table kit_models (id uuid, name text, provider_id uuid) on commit drop")
    with conn.cursor().copy("copy kit_providers from stdin") as copy:
        for pid, name in maps["llm_providers"].items():
            copy.write_row((pid, name))
    with conn.cursor().copy("copy kit_models from stdin") as copy:
        for mid, model in maps["llm_models"].items():
            copy.write_row((mid, model["name"], model["provider_id"]))
    conn.execute("update public.llm_providers p set id = k.id from kit_providers k where p.id is null and p.name = k.name")
    conn.execute("update public.llm_providers set id = gen_random_uuid() where id is null")
    conn.execute("update public.llm_models m set id = k.id from kit_models k where m.id is null and m.name = k.name")
    conn.execute("update public.llm_models set id = gen_random_uuid() where id is null")
    _link_models(conn)


def _link_models(conn: psycopg.Connection) -> None:
    if catalog.read(conn).has("llm_models", "provider_name"):
        conn.execute("update public.llm_models m set provider_id = p.id from public.llm_providers p "
                     "where m.provider_id is null and m.provider_name = p.name")


def _link_usage(conn: psycopg.Connection, folder: Path, data: dict) -> dict:
    conn.execute("create temp table kit_links (id bigint primary key, provider_id uuid, model_id uuid) on commit drop")
    with open(folder / data["maps"]["llm_usage"], "rb") as handle, \
            conn.cursor().copy("copy kit_links from stdin with (format csv)") as copy:
        for block in iter(lambda: handle.read(1 << 20), b""):
            copy.write(block)
    original = conn.execute(
        "update public.llm_usage u set provider_id = case when exists (select 1 from public.llm_providers p "
        "where p.id = l.provider_id) then l.provider_id end, model_id = case when exists (select 1 from "
        "public.llm_models m where m.id = l.model_id) then l.model_id end "
        "from kit_links l where u.id = l.id and u.provider_id is null and u.model_id is null").rowcount
    return {"linked_from_backup": original, "linked_by_name": _link_by_name(conn)}


def _link_by_name(conn: psycopg.Connection) -> int:
    a = conn.execute("update public.llm_usage u set provider_id = p.id from public.llm_providers p "
                     "where u.provider_id is null and u.provider_name = p.name").rowcount
    b = conn.execute("update public.llm_usage u set model_id = m.id from public.llm_models m "
                     "where u.model_id is null and u.model_name = m.name").rowcount
    return max(a, b)


def _finish(conn: psycopg.Connection, settings: Settings, original: list) -> str | None:
    conn.execute("update public.llm_providers set id = gen_random_uuid() where id is null")
    conn.execute("update public.llm_models set id = gen_random_uuid() where id is null")
    _link_models(conn)
    _link_by_name(conn)
    from kit import rollback_shape

    rollback_shape.restore(conn, original, MIGRATION_COLUMNS)
    return _forget_migration(conn, settings)


def _validate(conn: psycopg.Connection) -> None:
    for table, name in conn.execute(
            "select conrelid::regclass::text, conname from pg_constraint where not convalidated and contype = 'f' "
            "and conrelid = any(array['public.llm_usage', 'public.llm_models']::regclass[])").fetchall():
        conn.execute(f'alter table {table} validate constraint "{name}"')


def _forget_migration(conn: psycopg.Connection, settings: Settings) -> str | None:
    """Remove the change's history row, so the next push applies the migration again."""
    if not conn.execute("select to_regclass('supabase_migrations.schema_migrations')").fetchone()[0]:
        return None
    try:
        versions = [m.version for m in workdir.migrations(settings) if m.name == status.CHANGE_MIGRATION]
    except KitError:
        versions = []
    row = conn.execute("delete from supabase_migrations.schema_migrations where version = any(%s) or name = %s "
                       "returning version", (versions, status.CHANGE_MIGRATION)).fetchone()
    conn.execute("notify pgrst, 'reload schema'")
    return row[0] if row else None


def _bare(name: str) -> str:
    return name.removeprefix("public.").strip('"')
