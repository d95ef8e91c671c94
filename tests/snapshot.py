"""Catalog and data fingerprints, to show that a refused change changed nothing."""

from tests.helpers import query

SCHEMA_SQL = """
select 'column', c.relname, a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || case when a.attnotnull then ' not null' else '' end
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
from pg_class c join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
where n.nspname = 'public' and c.relkind in ('r', 'v', 'm')
union all
select 'constraint', conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid)
from pg_constraint where connamespace = 'public'::regnamespace
union all
select 'index', tablename, indexdef from pg_indexes where schemaname = 'public'
union all
select 'policy', tablename, policyname || ' ' || cmd || ' ' || coalesce(qual, '') from pg_policies
where schemaname = 'public'
union all
select 'rls', relname, relrowsecurity::text from pg_class where relnamespace = 'public'::regnamespace
  and relkind = 'r'
order by 1, 2, 3
"""


def schema(url: str) -> list[tuple]:
    return query(url, SCHEMA_SQL)


def data(url: str, tables=("llm_providers", "llm_models", "llm_usage")) -> dict[str, tuple]:
    """Row count and an order-independent digest of every row, per table."""
    return {t: query(url, f"select count(*), md5(coalesce(string_agg(md5(x::text), '' order by md5(x::text)), ''))"
                          f" from public.{t} x")[0] for t in tables}
