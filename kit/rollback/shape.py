"""Put the LLM tables' columns, constraints and indexes back to the shape a backup recorded."""

import psycopg
from psycopg import sql

from kit.backup import manifest
from kit.schema.catalog import bare


def columns(rows: list) -> dict[tuple[str, str], tuple[bool, str]]:
    """(table, column) -> (not null, type and default), from shape rows as a backup records them."""
    return {(bare(t), name): (flag == "not null", spec) for k, t, name, flag, spec in rows if k == "column"}


def _split(rows: list) -> tuple[set, set, dict]:
    constraints = {(bare(t), name, kind, spec) for k, t, name, kind, spec in rows if k == "constraint"}
    indexes = {(bare(t), name, spec) for k, t, name, _, spec in rows if k == "index"}
    return constraints, indexes, columns(rows)


def _table(name: str) -> sql.Composable:
    return sql.Identifier("public", name)


def restore(conn: psycopg.Connection, original: list, migration_columns: set) -> list[tuple]:
    """The statements that put the recorded shape back, read from the shape now: for the caller to send in one
    flight under the tables' lock, since this shape does not change until they run."""
    want_c, want_i, want_cols = _split(original)
    have_c, have_i, have_cols = _split(manifest.shape(conn))
    out: list[tuple] = []
    extra = sorted(have_c - want_c, key=lambda c: c[2] != "f")  # foreign keys go first
    going = {("public", table, name) for table, name, kind, _ in extra if kind == "f"}
    moved = []
    for table, name, kind, _ in extra:
        if kind in ("p", "u"):  # foreign keys (of any table) that rely on a key about to go: put back at the end
            found = [f for f in conn.execute(DEPENDENTS_SQL, (sql.Identifier("public", table).as_string(conn), name))
                     if tuple(f[:3]) not in going]  # (one of the extra ones is dropped for good, above)
            out += [(_drop(sql.Identifier(schema, rel), con), None) for schema, rel, con, _ in found]
            moved += found
        out.append((_drop(_table(table), name), None))
    out += [(sql.SQL("drop index {}").format(sql.Identifier("public", name)), None) for _, name, _ in have_i - want_i]
    out += [(sql.SQL("alter table {} drop column {}").format(_table(table), sql.Identifier(column)), None)
            for table, column in set(have_cols) - set(want_cols) if (table, column) in migration_columns]
    for key, (not_null, spec) in want_cols.items():
        if key in have_cols and have_cols[key] != (not_null, spec):
            out += _column(key, not_null, spec, have_cols[key])
    missing = sorted(want_c - have_c, key=lambda c: c[2] == "f")  # keys first, foreign keys last
    partitioned = {t for (t,) in conn.execute(
        "select relname from pg_class where relnamespace = 'public'::regnamespace and relkind = 'p'")}
    for table, name, kind, spec in missing:
        # Before PostgreSQL 18 a partitioned table takes no NOT VALID foreign key: it is checked now.
        tail = " not valid" if kind == "f" and table not in partitioned else ""
        out.append((sql.SQL("alter table {} add constraint {} {}").format(
            _table(table), sql.Identifier(name), sql.SQL(spec + tail)), None))
    # pg_get_indexdef writes ON ONLY for a partitioned table's index: built on every partition here.
    out += [(sql.SQL(spec.replace(" ON ONLY ", " ON ", 1)), None) for _, _, spec in want_i - have_i]
    for schema, table, name, spec in moved:  # on the unique index the backup recorded, now back
        out.append((sql.SQL("alter table {} add constraint {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(name), sql.SQL(spec)), None))
    return out


def _drop(table: sql.Composable, constraint: str) -> sql.Composed:
    return sql.SQL("alter table {} drop constraint {}").format(table, sql.Identifier(constraint))


DEPENDENTS_SQL = """
select n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid)
from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = c.relnamespace
where k.contype = 'f' and k.conparentid = 0 and k.conindid = (
  select conindid from pg_constraint where conrelid = %s::regclass and conname = %s)
"""


def _column(key: tuple, not_null: bool, spec: str, have: tuple) -> list[tuple]:
    table, column = key
    target = sql.SQL("alter table {} alter column {} ").format(_table(table), sql.Identifier(column))
    default = spec.partition(" default ")[2]
    out = []
    if default != have[1].partition(" default ")[2]:
        out.append((target + (sql.SQL("set default {}").format(sql.SQL(default)) if default
                              else sql.SQL("drop default")), None))
    if not_null != have[0]:
        out.append((target + sql.SQL("set not null" if not_null else "drop not null"), None))
    return out


# Objects that a plain DROP COLUMN / DROP CONSTRAINT would refuse for (normal dependencies), named as a user
# knows them: a view rather than its _RETURN rule. Foreign keys on a key are lifted and put back, so not listed.
BLOCKERS_SQL = """
select distinct case when d.classid = 'pg_rewrite'::regclass then
         (select case v.relkind when 'm' then 'materialized view ' else 'view ' end || v.oid::regclass::text
          from pg_rewrite r join pg_class v on v.oid = r.ev_class where r.oid = d.objid)
       else pg_describe_object(d.classid, d.objid, d.objsubid) end
from pg_depend d
where d.deptype = 'n' and (
  (d.refclassid = 'pg_class'::regclass and d.refobjid = %(table)s::regclass
   and d.refobjsubid = (select attnum from pg_attribute where attrelid = %(table)s::regclass and attname = %(column)s))
  or (d.refclassid = 'pg_constraint'::regclass and d.refobjid = (
   select oid from pg_constraint where conrelid = %(table)s::regclass and conname = %(constraint)s)
   and not (d.classid = 'pg_constraint'::regclass
            and (select contype from pg_constraint where oid = d.objid) = 'f')))
  and not (d.classid = 'pg_rewrite'::regclass
           and (select ev_class from pg_rewrite where oid = d.objid) = %(table)s::regclass)
order by 1
"""


def blockers(conn: psycopg.Connection, original: list, migration_columns: set) -> list[str]:
    """What would stop restore() part-way, found before anything changes: objects depending on a column
    it drops or on a key it drops, e.g. `view public.model_directory (uses llm_models.provider_name)`."""
    want_c, _, want_cols = _split(original)
    have_c, _, have_cols = _split(manifest.shape(conn))
    found = []
    for table, column in sorted(set(have_cols) - set(want_cols)):
        if (table, column) in migration_columns:
            found += [f"{obj} (uses {table}.{column})" for obj in _dependents(conn, table, column=column)]
    for table, name, kind, _ in sorted(have_c - want_c):
        if kind in ("p", "u"):
            found += [f"{obj} (relies on key {name} of {table})" for obj in _dependents(conn, table, constraint=name)]
    return list(dict.fromkeys(found))


def _dependents(conn: psycopg.Connection, table: str, column: str = "", constraint: str = "") -> list[str]:
    params = {"table": sql.Identifier("public", table).as_string(conn), "column": column, "constraint": constraint}
    return [obj for (obj,) in conn.execute(BLOCKERS_SQL, params).fetchall() if obj]
