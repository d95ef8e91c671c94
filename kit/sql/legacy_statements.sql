-- Statements in pg_stat_statements that still use the UUID columns of the LLM tables:
-- llm_usage.provider_id, llm_usage.model_id, llm_models.provider_id, and the id of
-- llm_models and llm_providers. Their clients break when the migration drops those columns.
with s as (
  select s.userid, s.calls, s.mean_exec_time, s.query,
         to_jsonb(s) ->> 'stats_since' as stats_since,  -- PostgreSQL 17+; null before
         -- lower case, no double quotes, no leading comments, one space between words
         regexp_replace(regexp_replace(lower(replace(s.query, '"', '')),
           '^(\s|--[^\n]*|/\*([^*]|\*+[^*/])*\*+/)+', ''), '\s+', ' ', 'g') as q
  from {schema}.pg_stat_statements s
  where s.dbid = (select oid from pg_database where datname = current_database())
    and coalesce((to_jsonb(s) ->> 'toplevel')::bool, true)  -- not the statements inside a DO block or function
    and strpos(s.query, '/* supabase-kit */') = 0       -- not the kit's own statements
),
-- pg_dump's COPY of a whole table (the kit's backup) and its restore: every column of the table, in any
-- order, give or take the columns the migration and the rollback drop and add (a rollback adds them back
-- at the end, so two backups list the same columns in different orders). A client's read or write lists
-- the columns it uses, never all of them.
kit_columns (t, col) as (
  values ('llm_providers', 'id'), ('llm_models', 'id'), ('llm_models', 'provider_id'),
         ('llm_models', 'provider_name'), ('llm_usage', 'provider_id'), ('llm_usage', 'model_id')
),
table_columns as (
  select c.relname as t, lower(a.attname) as col, a.attgenerated = '' as copied
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
  where c.relname in ('llm_usage', 'llm_models', 'llm_providers')
),
copies as (
  select s.q, m[1] as t, regexp_split_to_array(m[2], ' ?, ?') as cols
  from s, regexp_match(rtrim(s.q, '; '),
         '^copy (?:public\.)?(llm_usage|llm_models|llm_providers) \(([^()]*)\) (?:to stdout|from stdin)$') m
  where m is not null
),
dump_copies as (
  select p.q from copies p
  where not exists (select from unnest(p.cols) x (col)  -- it names no column the table never had
                    where (p.t, x.col) not in (select t, col from table_columns
                                               union all select t, col from kit_columns))
    and not exists (select from table_columns c         -- and leaves out no column pg_dump copies
                    where c.t = p.t and c.copied and c.col <> all (p.cols)
                      and (c.t, c.col) not in (select t, col from kit_columns))
)
select r.rolname as role, s.calls, round(s.mean_exec_time::numeric, 3) as mean_ms, s.stats_since,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 300) as query
from s
left join pg_roles r on r.oid = s.userid
where s.q ~ '^(select|insert|update|delete|merge|with|copy|values|table)\M'   -- no DDL, no DO blocks
  and s.q !~ '\mpg_stat_statements\M'                  -- not this query, wherever it is run from
  and s.q ~ '\mllm_(usage|models|providers)\M'
  and (s.q ~ '\m(provider|model)_id\M'
       -- llm_models.id, llm_providers.id, public.llm_models.id
       or s.q ~ '\mllm_(models|providers) ?\. ?id\M'
       -- a bare id where a lookup table is read and llm_usage (which has its own id) is not
       or (s.q !~ '\mllm_usage\M' and s.q ~ '(^|[^.\w$])id\M')
       -- m.id where m is an alias of llm_models or llm_providers
       or exists (select from regexp_matches(s.q, '\mllm_(?:models|providers) (?:as )?([a-z_][a-z0-9_]*)', 'g') m (a)
                  where m.a[1] not in ('where', 'join', 'inner', 'left', 'right', 'full', 'cross', 'natural',
                                       'on', 'using', 'set', 'group', 'order', 'limit', 'offset', 'returning',
                                       'union', 'except', 'intersect', 'having', 'window', 'for', 'select',
                                       'values', 'default', 'fetch', 'lateral', 'tablesample', 'only')
                    and s.q ~ ('\m' || m.a[1] || ' ?\. ?id\M')))
  and s.q not in (select q from dump_copies)
order by s.calls desc, s.query
