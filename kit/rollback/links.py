"""Give llm_usage rows their UUID links back from a backup's links file, exactly.

With a primary key (any name, type or arity), the file holds every row's key and links, NULL
ones included: a row that existed at backup time gets exactly its recorded links back, and only
rows written since are linked through their names. Without a primary key the file holds how
many rows had each pair of names and links; every row is linked through its names, and the
name pairs whose backup links were anything else are counted and named as unprovable.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from kit import db
from kit.backup.contents import Manifest
from kit.errors import BackupError

TEMP = sql.Identifier("kit_links")
LINKS = ("provider_id", "model_id")
USAGE = sql.Identifier("public", "llm_usage")


@dataclass
class Linked:
    """Step B's outcome for the rows the backup holds: how many got their recorded links back, how many of those
    links were lost (their provider or model is gone), and the names gone. `changed` is None without a key."""

    linked_from_backup: int
    links_lost: int
    names_gone: list[str]
    links_changed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        changed = {} if self.links_changed is None else {"links_changed": self.links_changed}
        return {"linked_from_backup": self.linked_from_backup, "links_lost": self.links_lost, **changed,
                "names_gone": self.names_gone}


@dataclass
class Unprovable:
    """A pair of names whose backup rows had other links than the ones the names give now (no key to tell)."""

    provider_name: str
    model_name: str
    backup_rows_otherwise_linked: int
    rows_now: int

    def as_dict(self) -> dict[str, Any]:
        return {"provider_name": self.provider_name, "model_name": self.model_name,
                "backup_rows_otherwise_linked": self.backup_rows_otherwise_linked, "rows_now": self.rows_now}


def key_of(data: Manifest) -> list[tuple[str, str]]:
    """The backup's llm_usage key as (column, type) pairs; [] when the table had none."""
    maps = data.require_maps()
    if maps.usage_key is None:  # backups from kits before the key was recorded: bigint id
        return [("id", "bigint")]
    return [(c, t) for c, t in maps.usage_key]


def load(conn: psycopg.Connection, folder: Path, data: Manifest) -> None:
    """The links file into a session temporary table, which outlives each step's transaction."""
    maps = data.require_maps()
    key = key_of(data)
    names = [(c, t) for c, t in maps.usage_names or [("provider_name", "text"), ("model_name", "text")]]
    order = maps.usage_columns  # the file's columns; older backups: key (or names), links, n
    types = {**dict(key or names), "provider_id": "uuid", "model_id": "uuid"}
    path = folder / maps.usage_file
    conn.execute(sql.SQL("drop table if exists pg_temp.{}").format(TEMP))
    if key or not order:
        cols = [(c, types[c]) for c in order] if order else [*types.items()] + ([] if key else [("n", "bigint")])
        _copy_in(conn, path, TEMP, cols)
    else:  # one line per row, as the dump had them: counted per pair of names and links here
        rows = sql.Identifier("kit_links_rows")
        _copy_in(conn, path, rows, [(c, types[c]) for c in order])
        conn.execute(sql.SQL("create temp table {} as select {}, count(*)::bigint as n from {} group by {}").format(
            TEMP, _list([*(c for c, _ in names), "provider_id", "model_id"]), rows, sql.SQL("1, 2, 3, 4")))
        conn.execute(sql.SQL("drop table pg_temp.{}").format(rows))
    if key:
        conn.execute(sql.SQL("create index on {} ({})").format(TEMP, _list(c for c, _ in key)))
    conn.execute(sql.SQL("analyze {}").format(TEMP))


def _copy_in(conn: psycopg.Connection, path: Path, table: sql.Identifier, cols: list[tuple[str, str]]) -> None:
    conn.execute(sql.SQL("drop table if exists pg_temp.{}").format(table))
    conn.execute(sql.SQL("create temp table {} ({})").format(table, sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in cols)))
    form = sql.SQL("csv" if path.suffix == ".csv" else "text")  # .csv: a backup taken before the links were COPY text
    with open(path, "rb") as handle, conn.cursor().copy(
            sql.SQL("copy {} from stdin with (format {})").format(table, form)) as copy:
        for block in iter(lambda: handle.read(1 << 20), b""):
            copy.write(block)


def check_key(current_key: list[str], data: Manifest) -> None:
    recorded = [c for c, _ in key_of(data)]
    if recorded and recorded != current_key:
        raise BackupError(f"llm_usage was keyed by ({', '.join(recorded)}) when the backup was taken and is keyed by "
                          f"({', '.join(current_key) or 'nothing'}) now: put that key back, then run kit rollback "
                          "again")


def link_recorded(conn: psycopg.Connection, data: Manifest) -> Linked:
    """Rows present at backup time get exactly their recorded links (a link whose provider or model
    has since been deleted becomes NULL and is counted as lost)."""
    key = [c for c, _ in key_of(data)]
    if not key:
        return Linked(0, 0, [])
    match = _match(key)
    target = {c: _target(c) for c in LINKS}
    changed = conn.execute(sql.SQL(
        "update {usage} u set provider_id = {p}, model_id = {m} from {temp} l where {match} "
        "and (u.provider_id is distinct from {p} or u.model_id is distinct from {m})").format(
        usage=USAGE, temp=TEMP, match=match, p=target["provider_id"], m=target["model_id"])).rowcount
    linked, lost = db.one_row(conn, sql.SQL(
        "select count(*) filter (where l.provider_id is not null or l.model_id is not null), "
        "count(*) filter (where (l.provider_id is not null and {p} is null) "
        "or (l.model_id is not null and {m} is null)) "
        "from {temp} l where exists (select 1 from {usage} u where {match})").format(
        usage=USAGE, temp=TEMP, match=match, p=target["provider_id"], m=target["model_id"]))
    return Linked(linked, lost, names_gone(conn, data) if lost else [], links_changed=changed)


def names_gone(conn: psycopg.Connection, data: Manifest) -> list[str]:
    """The backup's providers and models whose names no longer exist: each was renamed or deleted since
    (after the migration nothing tells those apart: the UUID that linked a row to it is gone)."""
    maps = data.require_maps()
    recorded = [("provider", name) for name in maps.providers.values()]
    recorded += [("model", model.name) for model in maps.models.values()]
    now = {("provider", n) for (n,) in conn.execute("select name::text from public.llm_providers")}
    now |= {("model", n) for (n,) in conn.execute("select name::text from public.llm_models")}
    return [f"{kind} {name}" for kind, name in sorted(set(recorded) - now)]


def link_by_name(conn: psycopg.Connection, data: Manifest) -> int:
    """Rows the backup does not hold (written since the migration) linked through their names."""
    return by_name_count(db.batch(conn, by_name_statements(data)))


def by_name_statements(data: Manifest) -> list[tuple]:
    """link_by_name as two statements, for a caller's batch (by_name_count reads their results): the provider
    link, then the model link, of each row that lacks it, from its names; each gives the count of rows linked.
    Two statements, not two updates in one: a statement must not update a row twice."""
    key = [c for c, _ in key_of(data)]
    new_only = sql.SQL(" and not exists (select 1 from {} l where {})").format(TEMP, _match(key)) if key \
        else sql.SQL("")
    return [(sql.SQL("with linked as (update {} u set {} = x.id from {} x where u.{} is null and u.{} = x.name{} "
                     "returning 1) select count(*) from linked").format(
                         USAGE, sql.Identifier(column), sql.Identifier("public", table), sql.Identifier(column),
                         sql.Identifier(name), new_only), None)
            for column, table, name in (("provider_id", "llm_providers", "provider_name"),
                                        ("model_id", "llm_models", "model_name"))]


def by_name_count(results: list[list]) -> int:
    """The rows by_name_statements linked: each row got both of its links, or the one it lacked."""
    return max(int(rows[0][0]) for rows in results)


def unprovable(conn: psycopg.Connection, data: Manifest) -> list[Unprovable]:
    """Without a key: name pairs whose backup rows had links other than the ones their names give now."""
    if key_of(data):
        return []
    rows = conn.execute(sql.SQL(
        "select g.provider_name, g.model_name, sum(g.n) filter (where g.provider_id is distinct from p.id "
        "or g.model_id is distinct from m.id), (select count(*) from {usage} u where u.provider_name = g.provider_name "
        "and u.model_name = g.model_name) from {temp} g left join public.llm_providers p on p.name = g.provider_name "
        "left join public.llm_models m on m.name = g.model_name group by 1, 2 "
        "having sum(g.n) filter (where g.provider_id is distinct from p.id or g.model_id is distinct from m.id) > 0 "
        "order by 1, 2").format(usage=USAGE, temp=TEMP)).fetchall()
    return [Unprovable(p, m, int(n), int(now)) for p, m, n, now in rows]


def drop(conn: psycopg.Connection) -> None:
    conn.execute(sql.SQL("drop table if exists pg_temp.{}").format(TEMP))


def _match(key: list[str]) -> sql.Composable:
    return sql.SQL(" and ").join(sql.SQL("u.{c} = l.{c}").format(c=sql.Identifier(c)) for c in key)


def _target(column: str) -> sql.Composable:
    ref = "llm_providers" if column == "provider_id" else "llm_models"
    return sql.SQL("case when exists (select 1 from {} r where r.id = l.{c}) then l.{c} end").format(
        sql.Identifier("public", ref), c=sql.Identifier(column))


def _list(columns: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
