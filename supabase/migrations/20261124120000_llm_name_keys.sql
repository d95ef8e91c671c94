-- Name keys for the LLM tables: llm_providers and llm_models are keyed by name, and
-- llm_usage keeps only its name columns. Replaces the UUID keys of the baseline.
--
-- How this file behaves, whatever tool pushes it (supabase db push, kit push):
-- * One transaction: the Supabase CLI runs a file and its history row together, so any
--   error below rolls back every change and the history row with it.
-- * Refuses instead of guessing: everything that would make the change unsafe is
--   collected first and raised as one error (SQLSTATE KB001) naming each blocker.
--   Nothing is ever dropped with CASCADE.
-- * Reads constraint and index names from the catalog; every step checks whether it is
--   still needed, so the file is a no-op on a migrated database and finishes the rest
--   on a half-migrated one.
-- * Polite to a live database: rows are back-filled under the weak locks an UPDATE
--   takes, then the three tables are locked together with a 100 ms lock_timeout,
--   retried with back-off, so inserts never queue behind a long report query for more
--   than one attempt. With the names already NOT NULL, nothing done under that lock
--   reads llm_usage's rows. Tune with the settings kit.lock_timeout_ms (default 100)
--   and kit.lock_wait_s (default 300) before pushing, e.g. through PGOPTIONS.
--
-- Layout: each step is a named function in pg_temp (gone when the session ends, never
-- part of the schema), defined first and called by the short driver pg_temp.llm_migrate()
-- at the end. `kit status` defines them in a transaction it always rolls back, switches
-- it to READ ONLY and calls pg_temp.llm_check() alone; tests/test_migration_pieces.py
-- calls each function on its own. Functions are always called schema-qualified, since
-- pg_temp is never searched for functions.

-- Supabase gives some roles a statement_timeout; the lock retries below may need longer.
select set_config('statement_timeout', '0', true);

---------------------------------------------------------------------------------------
-- The state, read from the catalog.
---------------------------------------------------------------------------------------

-- llm_usage, llm_models, llm_providers: the order they are locked in. KB003 when one is missing.
-- squawk asks for a lock_timeout and a statement_timeout before this first DDL; defining a function
-- in pg_temp locks no table, and the statements that do run inside these functions, the ALTERs only
-- once pg_temp.llm_lock_tables() holds the tables (statement_timeout 0 is set above on purpose).
-- squawk-ignore require-lock-timeout, require-statement-timeout
create or replace function pg_temp.llm_tables() returns regclass[]
language plpgsql stable as $fn$
declare
  tables constant regclass[] := array[to_regclass('public.llm_usage'), to_regclass('public.llm_models'),
                                      to_regclass('public.llm_providers')];
begin
  if array_position(tables, null) is not null then
    raise exception 'llm name keys: public.llm_providers, llm_models and llm_usage must all exist; push the baseline migration first'
      using errcode = 'KB003';
  end if;
  return tables;
end
$fn$;

-- An integer setting the pusher may give (kit.lock_timeout_ms, kit.lock_wait_s), else its default.
create or replace function pg_temp.llm_setting(setting text, fallback int) returns int
language sql stable as $fn$
  select coalesce(nullif(current_setting(setting, true), '')::int, fallback)
$fn$;

-- Is rel's primary key its name column alone?
create or replace function pg_temp.llm_keyed_by_name(rel regclass) returns boolean
language sql stable as $fn$
  select exists (
    select 1 from pg_constraint c
    where c.contype = 'p' and c.conrelid = rel
      and c.conkey = array[(select attnum from pg_attribute where attrelid = rel and attname = 'name')])
$fn$;

-- Does llm_models reach llm_providers by name, with the cascades the target schema has?
create or replace function pg_temp.llm_models_fk_ok() returns boolean
language sql stable as $fn$
  select exists (
    select 1 from pg_constraint c
    where c.contype = 'f' and c.conrelid = to_regclass('public.llm_models')
      and c.confrelid = to_regclass('public.llm_providers')
      and c.confdeltype = 'c' and c.confupdtype = 'c'
      and c.conkey = array[(select attnum from pg_attribute where attrelid = c.conrelid and attname = 'provider_name')]
      and c.confkey = array[(select attnum from pg_attribute where attrelid = c.confrelid and attname = 'name')])
$fn$;

-- What is left to do, as one object: the UUID columns still there (has_*), the name columns that
-- may still be null (*_nullable), the keys (p_keyed, m_keyed, m_fk_ok) and llm_usage's foreign
-- keys to a lookup table's UUID (u_fks; inherited copies on partitions are not counted).
create or replace function pg_temp.llm_state() returns jsonb
language plpgsql stable as $fn$
declare
  tables constant regclass[] := pg_temp.llm_tables();
  usage constant regclass := tables[1];
  models constant regclass := tables[2];
  providers constant regclass := tables[3];
  cols jsonb;
begin
  select jsonb_build_object(
    'has_p_id', coalesce(bool_or(attrelid = providers and attname = 'id'), false),
    'has_m_id', coalesce(bool_or(attrelid = models and attname = 'id'), false),
    'has_m_pid', coalesce(bool_or(attrelid = models and attname = 'provider_id'), false),
    'has_m_pname', coalesce(bool_or(attrelid = models and attname = 'provider_name'), false),
    'has_u_pid', coalesce(bool_or(attrelid = usage and attname = 'provider_id'), false),
    'has_u_mid', coalesce(bool_or(attrelid = usage and attname = 'model_id'), false),
    'u_pname_nullable', coalesce(bool_or(attrelid = usage and attname = 'provider_name' and not attnotnull), false),
    'u_mname_nullable', coalesce(bool_or(attrelid = usage and attname = 'model_name' and not attnotnull), false))
  into cols
  from pg_attribute
  where attrelid in (providers, models, usage) and attnum > 0 and not attisdropped;

  return cols || jsonb_build_object(
    'p_keyed', pg_temp.llm_keyed_by_name(providers),
    'm_keyed', pg_temp.llm_keyed_by_name(models),
    'm_fk_ok', pg_temp.llm_models_fk_ok(),
    'u_fks', (select count(*)
              from pg_constraint k
              where k.contype = 'f' and k.conrelid = usage and k.conparentid = 0
                and k.confrelid in (providers, models)
                and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid
                            and a.attnum = any (k.confkey) and a.attname = 'id')));
end
$fn$;

-- Nothing left to do?
create or replace function pg_temp.llm_migrated(state jsonb) returns boolean
language sql immutable as $fn$
  select not ((state->>'has_p_id')::bool or (state->>'has_m_id')::bool or (state->>'has_m_pid')::bool
              or (state->>'has_u_pid')::bool or (state->>'has_u_mid')::bool
              or (state->>'u_pname_nullable')::bool or (state->>'u_mname_nullable')::bool
              or not (state->>'p_keyed')::bool or not (state->>'m_keyed')::bool
              or not (state->>'m_fk_ok')::bool or (state->>'u_fks')::int > 0
              or not (state->>'has_m_pname')::bool)
$fn$;

-- The provider name of model `m`, as an SQL expression over whichever columns this state still has.
create or replace function pg_temp.llm_model_provider(state jsonb) returns text
language sql immutable as $fn$
  select case
    when (state->>'has_m_pname')::bool and (state->>'has_m_pid')::bool and (state->>'has_p_id')::bool then
      'coalesce(m.provider_name, (select p.name from public.llm_providers p where p.id = m.provider_id))'
    when (state->>'has_m_pname')::bool then 'm.provider_name'
    when (state->>'has_m_pid')::bool and (state->>'has_p_id')::bool then
      '(select p.name from public.llm_providers p where p.id = m.provider_id)'
    else 'null' end
$fn$;

---------------------------------------------------------------------------------------
-- Blockers and suggestions: what `kit status` reports, and what the migration refuses on.
---------------------------------------------------------------------------------------

-- Models that cannot be keyed by name (a name used twice, no name) or whose provider is unknown.
create or replace function pg_temp.llm_model_blockers(state jsonb) returns text[]
language plpgsql stable as $fn$
declare
  provider constant text := pg_temp.llm_model_provider(state);
  blockers text[] := '{}';
  r record;
  n bigint;
begin
  if not (state->>'m_keyed')::bool then
    for r in execute format(
      'select m.name, count(*) as n, string_agg(distinct coalesce(%s, ''(none)''), '', '') as provs
       from public.llm_models m group by m.name having count(*) > 1 order by m.name', provider)
    loop
      blockers := blockers || format('model name %L is used by %s models (providers: %s); rename or merge them so each name is unique',
                               r.name, r.n, r.provs);
    end loop;
    select count(*) into n from public.llm_models where name is null;
    if n > 0 then
      blockers := blockers || format('%s llm_models rows have no name', n);
    end if;
  end if;

  for r in execute format('select m.name, %s as prov from public.llm_models m order by m.name', provider) loop
    if r.prov is null then
      blockers := blockers || format('model %L has no provider that can be determined; set its provider_name', r.name);
    elsif not exists (select 1 from public.llm_providers p where p.name = r.prov) then
      blockers := blockers || format('model %L names provider %L, which is not in llm_providers', r.name, r.prov);
    end if;
  end loop;
  return blockers;
end
$fn$;

-- Usage rows whose name stays null: neither their own name nor a UUID that finds one. Only counted
-- while the column may be null, so a migrated llm_usage is never read.
create or replace function pg_temp.llm_usage_blockers(state jsonb) returns text[]
language plpgsql stable as $fn$
declare
  blockers text[] := '{}';
  n bigint;
begin
  if (state->>'u_mname_nullable')::bool then
    execute format(
      'select count(*) from public.llm_usage u where u.model_name is null %s',
      case when (state->>'has_u_mid')::bool and (state->>'has_m_id')::bool
        then 'and not exists (select 1 from public.llm_models m where m.id = u.model_id)' else '' end)
    into n;
    if n > 0 then
      blockers := blockers || format('%s llm_usage rows have no model_name and no model_id that finds a model', n);
    end if;
  end if;
  if (state->>'u_pname_nullable')::bool then
    execute format(
      'select count(*) from public.llm_usage u where u.provider_name is null %s %s',
      case when (state->>'has_u_pid')::bool and (state->>'has_p_id')::bool
        then 'and not exists (select 1 from public.llm_providers p where p.id = u.provider_id)' else '' end,
      case when (state->>'has_u_mid')::bool and (state->>'has_m_id')::bool
        then format('and not exists (select 1 from public.llm_models m where m.id = u.model_id and %s is not null)',
                    pg_temp.llm_model_provider(state))
        else '' end)
    into n;
    if n > 0 then
      blockers := blockers || format('%s llm_usage rows have no provider_name and no UUID that finds a provider', n);
    end if;
  end if;
  return blockers;
end
$fn$;

-- Objects outside the three tables' own keys that depend on a UUID column: dropping the column would
-- need CASCADE, or (a function's body) would break later. This file's own functions in a temporary
-- schema (this session's, or another's that ran it) are steps, not dependents.
create or replace function pg_temp.llm_dependent_blockers() returns text[]
language plpgsql stable as $fn$
declare
  tables constant regclass[] := pg_temp.llm_tables();
  usage constant regclass := tables[1];
  models constant regclass := tables[2];
  providers constant regclass := tables[3];
begin
  return array(
    with uuid_cols as (
      select a.attrelid as rel, a.attnum as att
      from pg_attribute a
      where not a.attisdropped and (
        (a.attrelid = providers and a.attname = 'id')
        or (a.attrelid = models and a.attname in ('id', 'provider_id'))
        or ((a.attrelid = usage or a.attrelid in (select relid from pg_partition_tree(usage))) and a.attname in ('provider_id', 'model_id')))
    ), deps as (
      select d.classid, d.objid
      from pg_depend d join uuid_cols c on d.refclassid = 'pg_class'::regclass
        and d.refobjid = c.rel and d.refobjsubid = c.att
      where d.deptype = 'n'
    ), objects (line) as (
      select 'view ' || v.oid::regclass::text
      from deps join pg_rewrite w on deps.classid = 'pg_rewrite'::regclass and w.oid = deps.objid
      join pg_class v on v.oid = w.ev_class
      union
      select format('policy %I on %s', p.polname, p.polrelid::regclass)
      from deps join pg_policy p on deps.classid = 'pg_policy'::regclass and p.oid = deps.objid
      union
      select format('trigger %I on %s', t.tgname, t.tgrelid::regclass)
      from deps join pg_trigger t on deps.classid = 'pg_trigger'::regclass and t.oid = deps.objid
      union
      select format('column default or expression on %s', ad.adrelid::regclass)
      from deps join pg_attrdef ad on deps.classid = 'pg_attrdef'::regclass and ad.oid = deps.objid
      union
      select format('foreign key %I on %s', k.conname, k.conrelid::regclass)
      from pg_constraint k join uuid_cols c on k.confrelid = c.rel and c.att = any (k.confkey)
      where k.contype = 'f' and k.conparentid = 0 and k.conrelid not in (providers, models, usage)
        and k.conrelid not in (select relid from pg_partition_tree(usage))
      union
      select format('publication %I (its column list or row filter) on %s', pub.pubname, pr.prrelid::regclass)
      from deps join pg_publication_rel pr on deps.classid = 'pg_publication_rel'::regclass and pr.oid = deps.objid
      join pg_publication pub on pub.oid = pr.prpubid
      union
      select 'function ' || f.oid::regprocedure::text
      from pg_proc f join pg_namespace ns on ns.oid = f.pronamespace
      where ns.nspname not in ('pg_catalog', 'information_schema')
        and not (f.proname like 'llm\_%' and (ns.oid = pg_my_temp_schema() or pg_is_other_temp_schema(ns.oid)))
        and not exists (select 1 from pg_depend e
                        where e.classid = 'pg_proc'::regclass and e.objid = f.oid and e.deptype = 'e')
        and (exists (select 1 from deps where deps.classid = 'pg_proc'::regclass and deps.objid = f.oid)
             or (f.prosrc ~* '\mllm_(usage|models|providers)\M'
                 and f.prosrc ~* '\m(provider_id|model_id)\M|\mllm_(models|providers)\.id\M'))
    )
    select line || ' depends on a UUID column; change or drop it first' from objects order by line);
end
$fn$;

-- Every blocker, in the order they are reported.
create or replace function pg_temp.llm_blockers(state jsonb) returns text[]
language sql stable as $fn$
  select pg_temp.llm_model_blockers(state) || pg_temp.llm_usage_blockers(state) || pg_temp.llm_dependent_blockers()
$fn$;

-- Indexes of llm_usage that lead with a UUID column go with it: each one's name-based match, to be
-- built CONCURRENTLY outside this transaction (a report, not a change). An index whose match
-- already exists is left out.
create or replace function pg_temp.llm_suggestions() returns setof text
language plpgsql stable as $fn$
declare
  usage constant regclass := (pg_temp.llm_tables())[1];
  r record;
  name_keys text;
begin
  for r in
    with cols as (
      select i.indexrelid, i.indnkeyatts,
             array(select case pg_get_indexdef(i.indexrelid, k, true)
                            when 'provider_id' then 'provider_name' when 'model_id' then 'model_name'
                            else pg_get_indexdef(i.indexrelid, k, true) end
                   from generate_series(1, i.indnkeyatts) k order by k) as keys,
             pg_get_indexdef(i.indexrelid, 1, true) as lead
      from pg_index i where i.indrelid = usage
    )
    select c.indexrelid::regclass::text as idx, c.lead, c.keys
    from cols c
    where c.lead in ('provider_id', 'model_id')
      and not exists (select 1 from cols o where o.keys = c.keys and o.indexrelid <> c.indexrelid
                      and o.lead not in ('provider_id', 'model_id'))
  loop
    -- The index's columns with each UUID replaced by its name, a repeated column kept once.
    name_keys := array_to_string(array(select k from unnest(r.keys) with ordinality u(k, o)
                                  where o = (select min(o2) from unnest(r.keys) with ordinality v(k2, o2) where k2 = k)
                                  order by o), ', ');
    return next format('dropping %s drops index %s; build its name match outside the migration: create index concurrently on public.llm_usage (%s)%s',
      r.lead, r.idx, name_keys,
      case when (select relkind from pg_class where oid = usage) = 'p'
        then ' (llm_usage is partitioned: create it on only the parent, then concurrently on each partition, and attach)'
        else '' end);
  end loop;
end
$fn$;

-- The first part of the migration, and all that `kit status` runs: the state; on a migrated
-- database a notice and null; else every blocker raised as one KB001 error, or the suggestions
-- as notices and the state to go on from. Reads only, under ACCESS SHARE locks.
create or replace function pg_temp.llm_check() returns jsonb
language plpgsql stable as $fn$
declare
  state constant jsonb := pg_temp.llm_state();
  blockers text[];
  suggestion text;
begin
  if pg_temp.llm_migrated(state) then
    raise notice 'llm name keys: already migrated, nothing to do';
    return null;
  end if;
  blockers := pg_temp.llm_blockers(state);
  if cardinality(blockers) > 0 then
    raise exception 'llm name keys: refusing to migrate, nothing was changed. % blocker(s): %',
      cardinality(blockers), array_to_string(blockers, '; ')
      using errcode = 'KB001',
            detail = array_to_string(blockers, E'\n'),
            hint = 'Fix each blocker, then push again. `kit status` lists them without changing anything.';
  end if;
  for suggestion in select pg_temp.llm_suggestions() loop
    raise notice 'llm name keys: suggestion: %', suggestion;
  end loop;
  return state;
end
$fn$;

---------------------------------------------------------------------------------------
-- Names from UUIDs, and the lock.
---------------------------------------------------------------------------------------

-- Fill llm_usage's null names from its UUIDs; the count of rows changed. Run before the lock
-- under an UPDATE's weak lock (inserts keep flowing), and again under it for the rows written
-- in between; with the names NOT NULL it reads no row.
create or replace function pg_temp.llm_backfill_usage_names(state jsonb) returns bigint
language plpgsql as $fn$
declare
  changed bigint := 0;
  n bigint;
begin
  if (state->>'u_mname_nullable')::bool and (state->>'has_u_mid')::bool and (state->>'has_m_id')::bool then
    update public.llm_usage u set model_name = m.name
    from public.llm_models m where u.model_name is null and u.model_id = m.id;
    get diagnostics n = row_count;
    changed := changed + n;
  end if;
  if (state->>'u_pname_nullable')::bool and (state->>'has_u_pid')::bool and (state->>'has_p_id')::bool then
    update public.llm_usage u set provider_name = p.name
    from public.llm_providers p where u.provider_name is null and u.provider_id = p.id;
    get diagnostics n = row_count;
    changed := changed + n;
  end if;
  if (state->>'u_pname_nullable')::bool and (state->>'has_u_mid')::bool and (state->>'has_m_id')::bool then
    execute format('update public.llm_usage u set provider_name = %s
                    from public.llm_models m where u.provider_name is null and u.model_id = m.id',
                   pg_temp.llm_model_provider(state));
    get diagnostics n = row_count;
    changed := changed + n;
  end if;
  return changed;
end
$fn$;

-- The sessions in the way of a lock on the LLM tables in mode `wanted` (AccessShareLock or
-- AccessExclusiveLock, the two the kit asks for): those holding a lock that conflicts with it, and
-- those queued for ACCESS EXCLUSIVE, which every later request waits behind. Null when there are
-- none. kit/schema/locks.py holders() is the same query for the kit's Python side.
create or replace function pg_temp.llm_lock_holders(wanted text) returns text
language sql stable as $fn$
  select string_agg(format('pid %s (%s, %s)', h.pid, h.app, h.activity), ', ' order by h.pid)
  from (select distinct a.pid, coalesce(nullif(a.application_name, ''), 'no name') as app, a.state as activity
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where a.pid <> pg_backend_pid()
          and (l.mode = 'AccessExclusiveLock' or (l.granted and wanted = 'AccessExclusiveLock'))
          and l.relation in (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                             where n.nspname = 'public' and c.relname in ('llm_usage', 'llm_models', 'llm_providers'))) h
$fn$;

-- Lock the three tables at once, each attempt giving up after lock_ms and the next one waiting
-- a little longer (50 ms more each time, at most 1 s), so that other sessions' statements never
-- queue behind this one for more than an attempt. The count of retries; after wait_s, KB002
-- naming the holders. kit/schema/locks.py lock_tables() is the same loop for the kit's Python side.
create or replace function pg_temp.llm_lock_tables(lock_ms int, wait_s int) returns int
language plpgsql as $fn$
declare
  deadline constant timestamptz := clock_timestamp() + make_interval(secs => wait_s);
  attempt int := 0;
begin
  loop
    begin
      perform set_config('lock_timeout', lock_ms || 'ms', true);
      lock table public.llm_usage, public.llm_models, public.llm_providers in access exclusive mode;
      return attempt;
    exception when lock_not_available then
      attempt := attempt + 1;
      if clock_timestamp() > deadline then
        raise exception 'llm name keys: could not lock the LLM tables in % s (% attempts); held by %',
          wait_s, attempt, coalesce(pg_temp.llm_lock_holders('AccessExclusiveLock'), 'sessions that have since finished')
          using errcode = 'KB002',
                hint = 'Nothing was changed. Push again when those sessions end, or end them.';
      end if;
      perform pg_sleep(least(0.05 * attempt, 1.0));
    end;
  end loop;
end
$fn$;

---------------------------------------------------------------------------------------
-- The changes, each one step that checks whether it is still needed. Run under the lock.
---------------------------------------------------------------------------------------

-- llm_usage: drop only its foreign keys that use a UUID column (its own, or a lookup table's id);
-- any other (to auth.users, on the names) stays. Dropping the parent's drops the partitions'
-- copies. The count dropped.
create or replace function pg_temp.llm_drop_usage_uuid_fks() returns int
language plpgsql as $fn$
declare
  usage constant regclass := 'public.llm_usage'::regclass;
  dropped int := 0;
  r record;
begin
  for r in
    select k.conname from pg_constraint k
    where k.contype = 'f' and k.conrelid = usage and k.conparentid = 0
      and (exists (select 1 from pg_attribute a where a.attrelid = usage and a.attnum = any (k.conkey)
                   and a.attname in ('provider_id', 'model_id'))
           or (k.confrelid in ('public.llm_providers'::regclass, 'public.llm_models'::regclass)
               and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid
                           and a.attnum = any (k.confkey) and a.attname = 'id')))
  loop
    execute format('alter table public.llm_usage drop constraint %I', r.conname);
    dropped := dropped + 1;
  end loop;
  return dropped;
end
$fn$;

-- Drop rel's column col if it is there. Never with CASCADE: whatever still depends on it (a
-- blocker) makes the drop fail, and the whole file rolls back.
create or replace function pg_temp.llm_drop_column(rel regclass, col name) returns boolean
language plpgsql as $fn$
begin
  if not exists (select 1 from pg_attribute where attrelid = rel and attname = col and not attisdropped) then
    return false;
  end if;
  execute format('alter table %s drop column %I', rel, col);
  return true;
end
$fn$;

-- llm_usage: its UUID columns go; the names are the only link.
create or replace function pg_temp.llm_drop_usage_uuid_columns() returns void
language plpgsql as $fn$
begin
  perform pg_temp.llm_drop_column('public.llm_usage', 'provider_id');
  perform pg_temp.llm_drop_column('public.llm_usage', 'model_id');
end
$fn$;

-- Set rel's column col NOT NULL if it may be null. It fails (and rolls everything back) when a
-- row slipped in without one.
create or replace function pg_temp.llm_set_not_null(rel regclass, col name) returns boolean
language plpgsql as $fn$
begin
  if not exists (select 1 from pg_attribute where attrelid = rel and attname = col and not attisdropped
                 and not attnotnull) then
    return false;
  end if;
  execute format('alter table %s alter column %I set not null', rel, col);
  return true;
end
$fn$;

-- llm_usage: provider_name and model_name NOT NULL.
create or replace function pg_temp.llm_usage_names_not_null() returns void
language plpgsql as $fn$
begin
  perform pg_temp.llm_set_not_null('public.llm_usage', 'provider_name');
  perform pg_temp.llm_set_not_null('public.llm_usage', 'model_name');
end
$fn$;

-- llm_models: a provider_name column, filled from provider_id while both are there; the count
-- of models filled.
create or replace function pg_temp.llm_add_models_provider_name() returns bigint
language plpgsql as $fn$
declare
  n bigint := 0;
begin
  if not exists (select 1 from pg_attribute where attrelid = 'public.llm_models'::regclass
                 and attname = 'provider_name' and not attisdropped) then
    alter table public.llm_models add column provider_name varchar(255);
  end if;
  if exists (select 1 from pg_attribute where attrelid = 'public.llm_models'::regclass
             and attname = 'provider_id' and not attisdropped)
     and exists (select 1 from pg_attribute where attrelid = 'public.llm_providers'::regclass
                 and attname = 'id' and not attisdropped) then
    update public.llm_models m set provider_name = p.name
    from public.llm_providers p where m.provider_name is null and m.provider_id = p.id;
    get diagnostics n = row_count;
  end if;
  return n;
end
$fn$;

-- llm_models: drop its foreign keys to llm_providers' UUID; the count dropped.
create or replace function pg_temp.llm_drop_models_uuid_fks() returns int
language plpgsql as $fn$
declare
  dropped int := 0;
  r record;
begin
  for r in
    select conname from pg_constraint c
    where c.contype = 'f' and c.conrelid = 'public.llm_models'::regclass
      and c.confrelid = 'public.llm_providers'::regclass
      and exists (select 1 from pg_attribute a where a.attrelid = 'public.llm_providers'::regclass
                  and a.attnum = any (c.confkey) and a.attname = 'id')
  loop
    execute format('alter table public.llm_models drop constraint %I', r.conname);
    dropped := dropped + 1;
  end loop;
  return dropped;
end
$fn$;

-- Drop rel's primary key unless it is its name alone.
create or replace function pg_temp.llm_drop_primary_key(rel regclass) returns boolean
language plpgsql as $fn$
declare
  key_name name;
begin
  if pg_temp.llm_keyed_by_name(rel) then
    return false;
  end if;
  select conname into key_name from pg_constraint where contype = 'p' and conrelid = rel;
  if key_name is null then
    return false;
  end if;
  execute format('alter table %s drop constraint %I', rel, key_name);
  return true;
end
$fn$;

-- Key a lookup table (llm_providers, llm_models) by name; its id column is left as it is. A plain
-- b-tree unique index on (name) alone becomes the key as it is; a unique constraint's index cannot,
-- so that constraint is replaced by the key and the foreign keys that rely on it are put back
-- unchanged on the key's index.
create or replace function pg_temp.llm_key_by_name(rel regclass) returns boolean
language plpgsql as $fn$
declare
  idx_name text;
  con_name name;
  refs text[] := '{}';
  r record;
  ddl text;
begin
  if pg_temp.llm_keyed_by_name(rel) then
    return false;
  end if;
  perform pg_temp.llm_drop_primary_key(rel);
  select i.indexrelid::regclass::text, c.conname into idx_name, con_name
  from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_am am on am.oid = ic.relam
  left join pg_constraint c on c.conindid = i.indexrelid and c.conrelid = rel
  where i.indrelid = rel and i.indisunique and i.indisvalid and i.indnkeyatts = 1 and i.indnatts = 1
    and i.indpred is null and i.indexprs is null and am.amname = 'btree' and i.indoption[0] = 0
    and i.indkey[0] = (select attnum from pg_attribute where attrelid = rel and attname = 'name')
  order by c.conname is not null, ic.relname
  limit 1;
  if idx_name is not null and con_name is null then
    execute format('alter table %s add primary key using index %s', rel, idx_name);
    raise notice 'llm name keys: % keyed by name with its unique index %', rel, idx_name;
    return true;
  end if;
  if con_name is not null then
    for r in select k.conrelid::regclass::text as tbl, k.conname, pg_get_constraintdef(k.oid) as def
             from pg_constraint k where k.contype = 'f' and k.conparentid = 0
               and k.conindid = (select conindid from pg_constraint where conrelid = rel and conname = con_name)
    loop
      refs := refs || format('alter table %s add constraint %I %s', r.tbl, r.conname, r.def);
      execute format('alter table %s drop constraint %I', r.tbl, r.conname);
    end loop;
    execute format('alter table %s drop constraint %I', rel, con_name);
  end if;
  execute format('alter table %s add primary key (name)', rel);
  foreach ddl in array refs loop
    execute ddl;
  end loop;
  return true;
end
$fn$;

-- llm_models: provider_name references llm_providers (name), following a rename or a delete;
-- a foreign key on provider_name without those cascades is replaced.
create or replace function pg_temp.llm_models_provider_fk() returns boolean
language plpgsql as $fn$
declare
  r record;
begin
  if pg_temp.llm_models_fk_ok() then
    return false;
  end if;
  for r in
    select conname from pg_constraint c
    where c.contype = 'f' and c.conrelid = 'public.llm_models'::regclass
      and c.confrelid = 'public.llm_providers'::regclass
      and c.conkey = array[(select attnum from pg_attribute
                            where attrelid = 'public.llm_models'::regclass and attname = 'provider_name')]
  loop
    execute format('alter table public.llm_models drop constraint %I', r.conname);
  end loop;
  alter table public.llm_models add foreign key (provider_name)
    references public.llm_providers (name) on delete cascade on update cascade;
  return true;
end
$fn$;

---------------------------------------------------------------------------------------
-- The driver.
---------------------------------------------------------------------------------------

create or replace function pg_temp.llm_migrate() returns void
language plpgsql as $fn$
declare
  lock_ms constant int := pg_temp.llm_setting('kit.lock_timeout_ms', 100);
  wait_s constant int := pg_temp.llm_setting('kit.lock_wait_s', 300);
  state constant jsonb := pg_temp.llm_check();
  lookup regclass;
begin
  if state is null then
    return;
  end if;
  perform pg_temp.llm_backfill_usage_names(state);
  raise notice 'llm name keys: locked the LLM tables after % retries', pg_temp.llm_lock_tables(lock_ms, wait_s);
  perform pg_temp.llm_backfill_usage_names(state);

  perform pg_temp.llm_drop_usage_uuid_fks();
  perform pg_temp.llm_drop_usage_uuid_columns();
  perform pg_temp.llm_usage_names_not_null();

  perform pg_temp.llm_add_models_provider_name();
  perform pg_temp.llm_drop_models_uuid_fks();
  perform pg_temp.llm_drop_column('public.llm_models', 'provider_id');
  perform pg_temp.llm_set_not_null('public.llm_models', 'provider_name');

  foreach lookup in array array['public.llm_providers', 'public.llm_models']::regclass[] loop
    if not pg_temp.llm_keyed_by_name(lookup) then
      perform pg_temp.llm_drop_primary_key(lookup);
      perform pg_temp.llm_drop_column(lookup, 'id');
      perform pg_temp.llm_key_by_name(lookup);
    end if;
  end loop;
  perform pg_temp.llm_models_provider_fk();
  raise notice 'llm name keys: migrated';
end
$fn$;

select pg_temp.llm_migrate();

-- PostgREST caches the schema; without this it keeps offering the dropped columns.
notify pgrst, 'reload schema';
