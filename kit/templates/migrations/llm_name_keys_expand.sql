-- Name keys for the LLM tables, step 1 of 2: EXPAND. Old clients keep working.
--
-- After this file, llm_providers and llm_models are keyed by name, llm_models.provider_name exists
-- (back-filled, NOT NULL, referencing llm_providers (name)) and llm_usage has no foreign key to a
-- lookup table's UUID. The UUID columns stay, nullable and without keys, with their values and
-- defaults, so a client that still sends or reads provider_id / model_id / id keeps working:
-- * a usage row written with only model_id / provider_id gets its names from the lookup tables, and
--   a model registered with only provider_id gets its provider_name, through BEFORE INSERT OR UPDATE
--   triggers (public.llm_usage_fill_names(), public.llm_models_fill_provider());
-- * the usage names stay as nullable as they were; step 2 makes them NOT NULL.
-- Step 2, CONTRACT (*_llm_name_keys_contract.sql), drops the triggers and the UUID columns and
-- ends in the schema of the one-step change (20261124120000_llm_name_keys.sql). `kit deploy`
-- pushes it only once pg_stat_statements shows no client using the UUID columns.
--
-- Like the one-step file: one transaction with its history row (the Supabase CLI's), refuses
-- with SQLSTATE KB001 naming every blocker, reads names from the catalog, a no-op when run again
-- (and on a database the contract or the one-step change has migrated), back-fills before it
-- locks, and locks the three tables with 100 ms attempts retried with back-off (kit.lock_timeout_ms,
-- kit.lock_wait_s). Its steps are pg_temp functions; those it shares with the one-step file are
-- the same text. `kit status` defines them in a rolled-back READ ONLY transaction and calls
-- pg_temp.llm_check(), this file's own check.

-- Supabase gives some roles a statement_timeout; the lock retries below may need longer.
select set_config('statement_timeout', '0', true);

---------------------------------------------------------------------------------------
-- The state, read from the catalog (as in the one-step file).
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

---------------------------------------------------------------------------------------
-- Names from UUIDs, and the lock (as in the one-step file).
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
-- The changes the expand shares with the one-step file. Run under the lock.
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
-- The expand step's own pieces.
---------------------------------------------------------------------------------------

-- The five UUID columns and what the expand reads of them: present, NOT NULL; the fill triggers
-- present; llm_models.provider_name NOT NULL.
create or replace function pg_temp.llm_expand_state() returns jsonb
language plpgsql stable as $fn$
declare
  tables constant regclass[] := pg_temp.llm_tables();
  usage constant regclass := tables[1];
  models constant regclass := tables[2];
  providers constant regclass := tables[3];
  uuid_cols constant int[] := array(
    select (a.attnotnull and a.attidentity = '')::int
    from pg_attribute a
    where not a.attisdropped and a.attnum > 0 and (
      (a.attrelid = providers and a.attname = 'id')
      or (a.attrelid = models and a.attname in ('id', 'provider_id'))
      or (a.attrelid = usage and a.attname in ('provider_id', 'model_id'))));
begin
  return pg_temp.llm_state() || jsonb_build_object(
    'uuid_columns', cardinality(uuid_cols),
    'uuid_not_null', (select coalesce(sum(x), 0) from unnest(uuid_cols) x),
    'm_pname_nullable', exists (select 1 from pg_attribute where attrelid = models
                                and attname = 'provider_name' and not attisdropped and not attnotnull),
    'fill_triggers', (select count(*) from pg_trigger
                      where tgname in ('llm_usage_fill_names', 'llm_models_fill_provider') and not tgisinternal
                        and tgparentid = 0 and tgrelid in (usage, models)));
end
$fn$;

-- Is the expand done: keyed by name, provider_name NOT NULL with its key, no UUID foreign key from
-- llm_usage, every UUID column there and nullable, both fill triggers in place?
create or replace function pg_temp.llm_expanded(state jsonb) returns boolean
language sql immutable as $fn$
  select (state->>'p_keyed')::bool and (state->>'m_keyed')::bool and (state->>'m_fk_ok')::bool
         and (state->>'has_m_pname')::bool and not (state->>'m_pname_nullable')::bool
         and (state->>'u_fks')::int = 0 and (state->>'uuid_columns')::int = 5
         and (state->>'uuid_not_null')::int = 0 and (state->>'fill_triggers')::int = 2
$fn$;

-- What stops the expand: the model blockers of the one-step change (a name used twice, an unknown
-- provider); a foreign key of another table on a lookup table's UUID (dropping the UUID key would
-- need CASCADE); some UUID columns gone and others not (a one-step change or rollback part-way).
create or replace function pg_temp.llm_expand_blockers(state jsonb) returns text[]
language plpgsql stable as $fn$
declare
  blockers text[] := pg_temp.llm_model_blockers(state);
  r record;
begin
  if (state->>'uuid_columns')::int between 1 and 4 then
    blockers := blockers || format('only %s of the 5 UUID columns are left: the LLM tables are part-way through '
                                   'the one-step change or a rollback; finish that first', state->>'uuid_columns');
  end if;
  for r in
    select k.conname, k.conrelid::regclass::text as tbl from pg_constraint k
    join pg_attribute a on a.attrelid = k.confrelid and a.attnum = any (k.confkey) and a.attname = 'id'
    where k.contype = 'f' and k.conparentid = 0
      and k.confrelid in ('public.llm_providers'::regclass, 'public.llm_models'::regclass)
      and k.conrelid not in ('public.llm_providers'::regclass, 'public.llm_models'::regclass,
                             'public.llm_usage'::regclass)
      and k.conrelid not in (select relid from pg_partition_tree('public.llm_usage'::regclass))
    order by 2, 1
  loop
    blockers := blockers || format('foreign key %I on %s depends on a UUID column; change or drop it first',
                                   r.conname, r.tbl);
  end loop;
  return blockers;
end
$fn$;

-- The expand's check, all that `kit status` runs of this file: null (with a notice) when there is
-- nothing to do (expanded already, or no UUID column left: the contract or the one-step change
-- ran); else KB001 naming every blocker, or the state to go on from. Reads only.
create or replace function pg_temp.llm_check() returns jsonb
language plpgsql stable as $fn$
declare
  state constant jsonb := pg_temp.llm_expand_state();
  blockers text[];
begin
  if pg_temp.llm_expanded(state) then
    raise notice 'llm name keys: already expanded, nothing to do';
    return null;
  end if;
  if (state->>'uuid_columns')::int = 0 then
    raise notice 'llm name keys: the UUID columns are gone already, nothing to expand';
    return null;
  end if;
  blockers := pg_temp.llm_expand_blockers(state);
  if cardinality(blockers) > 0 then
    raise exception 'llm name keys: refusing to expand, nothing was changed. % blocker(s): %',
      cardinality(blockers), array_to_string(blockers, '; ')
      using errcode = 'KB001',
            detail = array_to_string(blockers, E'\n'),
            hint = 'Fix each blocker, then push again. `kit status` lists them without changing anything.';
  end if;
  return state;
end
$fn$;

-- Drop NOT NULL from rel's column col if it has one (an identity column keeps it: it fills itself).
create or replace function pg_temp.llm_drop_not_null(rel regclass, col name) returns boolean
language plpgsql as $fn$
begin
  if not exists (select 1 from pg_attribute where attrelid = rel and attname = col and not attisdropped
                 and attnotnull and attidentity = '') then
    return false;
  end if;
  execute format('alter table %s alter column %I drop not null', rel, col);
  return true;
end
$fn$;

-- Every UUID column nullable, so that a client that leaves one out (a new one) or sends null is not
-- refused; their values and defaults stay for the clients that still read and send them.
create or replace function pg_temp.llm_uuid_columns_nullable() returns void
language plpgsql as $fn$
begin
  perform pg_temp.llm_drop_not_null('public.llm_providers', 'id');
  perform pg_temp.llm_drop_not_null('public.llm_models', 'id');
  perform pg_temp.llm_drop_not_null('public.llm_models', 'provider_id');
  perform pg_temp.llm_drop_not_null('public.llm_usage', 'provider_id');
  perform pg_temp.llm_drop_not_null('public.llm_usage', 'model_id');
end
$fn$;

-- The fill triggers: a usage row or a model that comes with a UUID and no name gets the name from
-- the lookup tables, before NOT NULL is checked. SECURITY DEFINER with an empty search_path: the
-- lookup works whatever the writing role may read (as the foreign keys' checks did), and names
-- nothing it does not qualify. The UUIDs are no longer keys, so `limit 1`. The comment marks them
-- as the kit's, which the contract drops (and does not count as blockers). Kept in this file as
-- text so that `kit rollback` can put them back when the backup it restores had them.
create or replace function pg_temp.llm_fill_create() returns void
language plpgsql as $fn$
begin
  create or replace function public.llm_usage_fill_names() returns trigger
  language plpgsql security definer set search_path = '' as $body$
  begin
    if new.model_name is null and new.model_id is not null then
      new.model_name := (select m.name from public.llm_models m where m.id = new.model_id limit 1);
    end if;
    if new.provider_name is null and new.provider_id is not null then
      new.provider_name := (select p.name from public.llm_providers p where p.id = new.provider_id limit 1);
    end if;
    if new.provider_name is null and new.model_id is not null then
      new.provider_name := (select m.provider_name from public.llm_models m where m.id = new.model_id limit 1);
    end if;
    return new;
  end
  $body$;
  create or replace function public.llm_models_fill_provider() returns trigger
  language plpgsql security definer set search_path = '' as $body$
  begin
    if new.provider_name is null and new.provider_id is not null then
      new.provider_name := (select p.name from public.llm_providers p where p.id = new.provider_id limit 1);
    end if;
    return new;
  end
  $body$;
  comment on function public.llm_usage_fill_names() is 'supabase-kit: expand step, dropped by the contract';
  comment on function public.llm_models_fill_provider() is 'supabase-kit: expand step, dropped by the contract';
  revoke all on function public.llm_usage_fill_names(), public.llm_models_fill_provider() from public;
  create or replace trigger llm_usage_fill_names before insert or update on public.llm_usage
    for each row execute function public.llm_usage_fill_names();
  create or replace trigger llm_models_fill_provider before insert or update on public.llm_models
    for each row execute function public.llm_models_fill_provider();
end
$fn$;

---------------------------------------------------------------------------------------
-- The driver.
---------------------------------------------------------------------------------------

create or replace function pg_temp.llm_expand() returns void
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
  perform pg_temp.llm_fill_create();

  perform pg_temp.llm_add_models_provider_name();
  perform pg_temp.llm_drop_models_uuid_fks();
  perform pg_temp.llm_set_not_null('public.llm_models', 'provider_name');

  foreach lookup in array array['public.llm_providers', 'public.llm_models']::regclass[] loop
    perform pg_temp.llm_key_by_name(lookup);
  end loop;
  perform pg_temp.llm_models_provider_fk();
  perform pg_temp.llm_uuid_columns_nullable();  -- once the ids are no longer keys
  raise notice 'llm name keys: expanded';
end
$fn$;

select pg_temp.llm_expand();

-- PostgREST caches the schema; the UUID columns are now optional for it.
notify pgrst, 'reload schema';
