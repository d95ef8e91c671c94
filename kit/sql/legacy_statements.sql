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
dump_copies as (                                        -- pg_dump's COPY of a whole table, and its restore
  select format('copy public.%s (%s) %s', c.relname, string_agg(lower(a.attname), ', ' order by a.attnum), d) as q
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
  join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
  cross join (values ('to stdout'), ('from stdin')) v (d)
  where c.relname in ('llm_usage', 'llm_models', 'llm_providers')
  group by c.relname, d
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
  and rtrim(s.q, '; ') not in (select q from dump_copies)
order by s.calls desc, s.query
