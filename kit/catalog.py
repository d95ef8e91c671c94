"""What pg_catalog says about the three LLM tables, read in one pass."""

from dataclasses import dataclass, field

import psycopg

TABLES = ("llm_providers", "llm_models", "llm_usage")
UUID_COLUMNS = {"llm_providers": ("id",), "llm_models": ("id", "provider_id"),
                "llm_usage": ("provider_id", "model_id")}


@dataclass
class Column:
    name: str
    type: str
    not_null: bool


@dataclass
class ForeignKey:
    name: str
    table: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: str
    on_update: str


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    rls: bool = False
    policies: list[str] = field(default_factory=list)


@dataclass
class Catalog:
    tables: dict[str, Table]
    foreign_keys: list[ForeignKey]

    def has(self, table: str, column: str) -> bool:
        return table in self.tables and column in self.tables[table].columns

    def uuid_columns_left(self) -> list[str]:
        return [f"{t}.{c}" for t, cols in UUID_COLUMNS.items() for c in cols if self.has(t, c)]


COLUMNS_SQL = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, c.relrowsecurity
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where n.nspname = 'public' and c.relname = any(%s) and c.relkind in ('r', 'p')
order by c.relname, a.attnum
"""
CONSTRAINTS_SQL = """
select k.conname, k.contype, k.conrelid::regclass::text, k.confrelid::regclass::text,
       array(select attname from unnest(k.conkey) with ordinality u(n, i)
             join pg_attribute on attrelid = k.conrelid and attnum = u.n order by u.i),
       array(select attname from unnest(k.confkey) with ordinality u(n, i)
             join pg_attribute on attrelid = k.confrelid and attnum = u.n order by u.i),
       k.confdeltype::text, k.confupdtype::text
from pg_constraint k
where k.contype in ('p', 'f')
  and (k.conrelid = any(%(rels)s::regclass[]) or k.confrelid = any(%(rels)s::regclass[]))
"""
POLICIES_SQL = "select tablename, policyname from pg_policies where schemaname = 'public' and tablename = any(%s)"
ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def read(conn: psycopg.Connection) -> Catalog:
    tables: dict[str, Table] = {}
    for rel, col, typ, not_null, rls in conn.execute(COLUMNS_SQL, (list(TABLES),)):
        table = tables.setdefault(rel, Table(rel, rls=rls))
        table.columns[col] = Column(col, typ, not_null)
    rels = [f"public.{t}" for t in tables]
    fks = []
    for name, kind, rel, ref, cols, ref_cols, on_del, on_upd in conn.execute(CONSTRAINTS_SQL, {"rels": rels}):
        rel, ref = _bare(rel), _bare(ref)
        if kind == "p" and rel in tables:
            tables[rel].primary_key = list(cols)
        elif kind == "f":
            fks.append(ForeignKey(name, rel, list(cols), ref, list(ref_cols), ACTIONS[on_del], ACTIONS[on_upd]))
    for rel, policy in conn.execute(POLICIES_SQL, (list(TABLES),)):
        tables[rel].policies.append(policy)
    return Catalog(tables, fks)


def _bare(name: str | None) -> str:
    return (name or "").removeprefix("public.").strip('"')
