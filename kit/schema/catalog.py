"""What pg_catalog says about the three LLM tables: the shape every command works from.

Nothing here assumes the baseline's shape: columns (type, nullability, default, identity,
generated expression), the primary key of any name and arity or none, partitioning,
publications and foreign keys are read as they are.
"""

from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from kit import db

TABLES = ("llm_providers", "llm_models", "llm_usage")
UUID_COLUMNS = {"llm_providers": ("id",), "llm_models": ("id", "provider_id"),
                "llm_usage": ("provider_id", "model_id")}
# The expand step's triggers that fill names from the UUIDs old clients send (dropped by the contract).
FILL_TRIGGERS = {"llm_usage": "llm_usage_fill_names", "llm_models": "llm_models_fill_provider"}


@dataclass
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None = None
    identity: str = ""  # "", "always" or "by default"
    generated: str | None = None  # the expression of a stored generated column
    base: str = ""  # the type underneath a domain, else the type itself
    enum_labels: list[str] = field(default_factory=list)

    @property
    def writable(self) -> bool:
        return self.generated is None and self.identity != "always"


@dataclass
class ForeignKey:
    name: str
    table: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]
    on_delete: str
    on_update: str
    definition: str = ""


@dataclass
class Publication:
    name: str
    whole_table: bool
    columns: list[str] | None = None
    row_filter: str | None = None


@dataclass
class Table:
    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    primary_key_name: str | None = None
    rls: bool = False
    policies: list[str] = field(default_factory=list)
    partition_key: str | None = None
    partitions: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)  # "schema.name" of the leaf partitions: where the rows are
    publications: list[Publication] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)  # user triggers (not a constraint's, not a partition's copy)

    @property
    def partitioned(self) -> bool:
        return self.partition_key is not None


@dataclass
class Catalog:
    tables: dict[str, Table]
    foreign_keys: list[ForeignKey]

    def has(self, table: str, column: str) -> bool:
        return table in self.tables and column in self.tables[table].columns

    def uuid_columns_left(self) -> list[str]:
        return [f"{t}.{c}" for t, cols in UUID_COLUMNS.items() for c in cols if self.has(t, c)]

    def as_dict(self) -> dict:
        """The shape as a backup manifest records it."""
        return {"tables": {n: {**asdict(t), "partitioned": t.partitioned} for n, t in self.tables.items()},
                "foreign_keys": [asdict(fk) for fk in self.foreign_keys]}


COLUMNS_SQL = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, c.relrowsecurity,
       case when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end,
       case a.attidentity when 'a' then 'always' when 'd' then 'by default' else '' end,
       case when a.attgenerated <> '' then pg_get_expr(d.adbin, d.adrelid) end,
       format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), null),
       array(select e.enumlabel::text from pg_enum e
             where e.enumtypid = coalesce(nullif(t.typbasetype, 0), a.atttypid) order by e.enumsortorder),
       case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
join pg_type t on t.oid = a.atttypid
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where n.nspname = 'public' and c.relname = any(%s) and c.relkind in ('r', 'p')
order by c.relname, a.attnum
"""
# conparentid <> 0: a partition's inherited copy of its parent's constraint, not one of its own.
CONSTRAINTS_SQL = """
select k.conname, k.contype, k.conrelid::regclass::text, k.confrelid::regclass::text,
       array(select attname from unnest(k.conkey) with ordinality u(n, i)
             join pg_attribute on attrelid = k.conrelid and attnum = u.n order by u.i),
       array(select attname from unnest(k.confkey) with ordinality u(n, i)
             join pg_attribute on attrelid = k.confrelid and attnum = u.n order by u.i),
       k.confdeltype::text, k.confupdtype::text, pg_get_constraintdef(k.oid)
from pg_constraint k
where k.contype in ('p', 'f') and k.conparentid = 0
  and (k.conrelid = any({rels}) or k.confrelid = any({rels}))
order by k.conrelid::regclass::text, k.conname
"""
POLICIES_SQL = """select tablename, policyname from pg_policies where schemaname = 'public' and tablename = any(%s)
order by 1, 2"""
PARTITIONS_SQL = """
select p.relname, t.relid::regclass::text, t.isleaf, ln.nspname || '.' || l.relname
from pg_class p join pg_namespace n on n.oid = p.relnamespace
cross join lateral pg_partition_tree(p.oid) t
join pg_class l on l.oid = t.relid join pg_namespace ln on ln.oid = l.relnamespace
where n.nspname = 'public' and p.relname = any(%s) and p.relkind = 'p' and t.relid <> p.oid
order by 1, 2
"""
PUBLICATIONS_SQL = """
select c.relname, pub.pubname, pr.prattrs is null and pr.prqual is null,
       case when pr.prattrs is not null then array(select attname from pg_attribute
            where attrelid = pr.prrelid and attnum = any (pr.prattrs) order by attnum) end,
       pg_get_expr(pr.prqual, pr.prrelid)
from pg_publication_rel pr join pg_publication pub on pub.oid = pr.prpubid
join pg_class c on c.oid = pr.prrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relname = any(%(names)s)
union all
select t, pub.pubname, true, null, null from pg_publication pub cross join unnest(%(names)s::text[]) t
where pub.puballtables
order by 1, 2
"""
TRIGGERS_SQL = """
select c.relname, t.tgname from pg_trigger t join pg_class c on c.oid = t.tgrelid
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relname = any(%s) and not t.tgisinternal and t.tgparentid = 0
order by 1, 2
"""
ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def read(conn: psycopg.Connection) -> Catalog:
    """The three tables' shape: one round trip."""
    return from_rows(db.batch(conn, statements()))


def statements() -> list[tuple]:
    """The catalog's queries, to send alone (read) or in a caller's batch; from_rows reads their results."""
    names = list(TABLES)
    rels = sql.SQL("array(select to_regclass(x) from unnest({}::text[]) x)").format(
        sql.Literal([qualified(t) for t in names]))
    return [(COLUMNS_SQL, (names,)), (sql.SQL(CONSTRAINTS_SQL).format(rels=rels), None), (POLICIES_SQL, (names,)),
            (PARTITIONS_SQL, (names,)), (PUBLICATIONS_SQL, {"names": names}), (TRIGGERS_SQL, (names,))]


READS = 6  # how many results of statements() from_rows reads, for a caller's batch


def from_rows(results: list[list]) -> Catalog:
    """A Catalog from the results of statements(), in their order."""
    columns, constraints, policies, partitions, publications, triggers = results
    tables: dict[str, Table] = {}
    for rel, col, typ, not_null, rls, default, ident, gen, base, labels, partkey in columns:
        table = tables.setdefault(rel, Table(rel, rls=rls, partition_key=partkey))
        table.columns[col] = Column(col, typ, not_null, default, ident, gen, base, list(labels))
    fks = []
    for name, kind, rel, ref, cols, ref_cols, on_del, on_upd, definition in constraints:
        rel, ref = bare(rel), bare(ref)
        if kind == "p" and rel in tables:
            tables[rel].primary_key, tables[rel].primary_key_name = list(cols), name
        elif kind == "f":
            fks.append(ForeignKey(name, rel, list(cols), ref, list(ref_cols), ACTIONS[on_del], ACTIONS[on_upd],
                                  definition))
    for rel, policy in policies:
        tables[rel].policies.append(policy)
    for rel, part, leaf, where in partitions:
        tables[rel].partitions.append(bare(part))
        if leaf:
            tables[rel].leaves.append(where)
    for rel, pub, whole, cols, qual in publications:
        if rel in tables:
            tables[rel].publications.append(Publication(pub, whole, list(cols) if cols else None, qual))
    for rel, trigger in triggers:
        if rel in tables:
            tables[rel].triggers.append(trigger)
    return Catalog(tables, fks)


def qualified(table: str) -> str:
    """public.<table> quoted as a regclass input."""
    return sql.Identifier("public", table).as_string(None)


def bare(name: str | None) -> str:
    """A regclass text of a public table without its schema and quotes: `public."llm_usage"` -> llm_usage."""
    return (name or "").removeprefix("public.").strip('"')
