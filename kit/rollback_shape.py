"""Put the LLM tables' columns, constraints and indexes back to the shape a backup recorded."""

import psycopg

from kit import manifest


def _bare(name: str) -> str:
    return name.removeprefix("public.").strip('"')


def _split(rows: list) -> tuple[set, set, dict]:
    constraints = {(_bare(t), name, kind, spec) for k, t, name, kind, spec in rows if k == "constraint"}
    indexes = {(_bare(t), name, spec) for k, t, name, _, spec in rows if k == "index"}
    columns = {(_bare(t), name): (flag == "not null", spec) for k, t, name, flag, spec in rows if k == "column"}
    return constraints, indexes, columns


def restore(conn: psycopg.Connection, original: list, migration_columns: set) -> None:
    want_c, want_i, want_cols = _split(original)
    have_c, have_i, have_cols = _split(manifest.shape(conn))
    extra = sorted(have_c - want_c, key=lambda c: c[2] != "f")  # foreign keys go first
    for table, name, _, _ in extra:
        conn.execute(f'alter table public."{table}" drop constraint "{name}"')
    for table, name, _ in have_i - want_i:
        conn.execute(f'drop index public."{name}"')
    for table, column in set(have_cols) - set(want_cols):
        if (table, column) in migration_columns:
            conn.execute(f'alter table public."{table}" drop column "{column}"')
    for key, (not_null, spec) in want_cols.items():
        if key in have_cols and have_cols[key] != (not_null, spec):
            _column(conn, key, not_null, spec, have_cols[key])
    missing = sorted(want_c - have_c, key=lambda c: c[2] == "f")  # keys first, foreign keys last
    for table, name, kind, spec in missing:
        tail = " not valid" if kind == "f" else ""
        conn.execute(f'alter table public."{table}" add constraint "{name}" {spec}{tail}')
    for _, _, spec in want_i - have_i:
        conn.execute(spec)


def _column(conn: psycopg.Connection, key: tuple, not_null: bool, spec: str, have: tuple) -> None:
    table, column = key
    target = f'alter table public."{table}" alter column "{column}"'
    default = spec.partition(" default ")[2]
    if default != have[1].partition(" default ")[2]:
        conn.execute(f"{target} set default {default}" if default else f"{target} drop default")
    if not_null != have[0]:
        conn.execute(f"{target} {'set' if not_null else 'drop'} not null")
