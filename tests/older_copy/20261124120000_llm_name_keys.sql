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

-- Supabase gives some roles a statement_timeout; the lock retries below may need longer.
select set_config('statement_timeout', '0', true);

do $migrate$
declare
  providers constant regclass := to_regclass('public.llm_providers');
  models constant regclass := to_regclass('public.llm_models');
  usage constant regclass := to_regclass('public.llm_usage');
  lock_ms int := coalesce(nullif(current_setting('kit.lock_timeout_ms', true), '')::int, 100);
  wait_s int := coalesce(nullif(current_setting('kit.lock_wait_s', true), '')::int, 300);
  has_p_id bool; has_m_id bool; has_m_pid bool; has_m_pname bool;
  has_u_pid bool; has_u_mid bool;
  u_pname_nullable bool; u_mname_nullable bool;
  p_keyed bool; m_keyed bool; m_fk_ok bool; u_fks int;
  model_provider text;
  blockers text[] := '{}';
  line text;
  n bigint;
  attempt int := 0;
  deadline timestamptz;
  r record;
  rel regclass;
  idx_name text;
  con_name text;
  refs text[];
begin
  if providers is null or models is null or usage is null then
    raise exception 'llm name keys: public.llm_providers, llm_models and llm_usage must all exist; push the baseline migration first'
      using errcode = 'KB003';
  end if;

  -- The state, read from the catalog.
  select
    bool_or(attrelid = providers and attname = 'id'),
    bool_or(attrelid = models and attname = 'id'),
    bool_or(attrelid = models and attname = 'provider_id'),
    bool_or(attrelid = models and attname = 'provider_name'),
    bool_or(attrelid = usage and attname = 'provider_id'),
    bool_or(attrelid = usage and attname = 'model_id'),
    bool_or(attrelid = usage and attname = 'provider_name' and not attnotnull),
    bool_or(attrelid = usage and attname = 'model_name' and not attnotnull)
  into has_p_id, has_m_id, has_m_pid, has_m_pname, has_u_pid, has_u_mid,
       u_pname_nullable, u_mname_nullable
  from pg_attribute
  where attrelid in (providers, models, usage) and attnum > 0 and not attisdropped;

  -- Is each table keyed by name alone?
  select coalesce(bool_or(c.conrelid = providers), false), coalesce(bool_or(c.conrelid = models), false)
  into p_keyed, m_keyed
  from pg_constraint c
  where c.contype = 'p' and c.conrelid in (providers, models)
    and c.conkey = array[(select attnum from pg_attribute where attrelid = c.conrelid and attname = 'name')];

  -- llm_usage's own foreign keys to a lookup table's UUID (inherited copies on partitions excluded).
  select count(*) into u_fks
  from pg_constraint k
  where k.contype = 'f' and k.conrelid = usage and k.conparentid = 0 and k.confrelid in (providers, models)
    and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid and a.attnum = any (k.confkey)
                and a.attname = 'id');

  select exists (
    select 1 from pg_constraint c
    where c.contype = 'f' and c.conrelid = models and c.confrelid = providers
      and c.confdeltype = 'c' and c.confupdtype = 'c'
      and c.conkey = array[(select attnum from pg_attribute where attrelid = models and attname = 'provider_name')]
      and c.confkey = array[(select attnum from pg_attribute where attrelid = providers and attname = 'name')]
  ) into m_fk_ok;

  if not (has_p_id or has_m_id or has_m_pid or has_u_pid or has_u_mid
          or u_pname_nullable or u_mname_nullable or not p_keyed or not m_keyed
          or not m_fk_ok or u_fks > 0 or not has_m_pname) then
    raise notice 'llm name keys: already migrated, nothing to do';
    return;
  end if;

  -- The provider of each model, from whichever columns this state still has.
  model_provider := case
    when has_m_pname and has_m_pid and has_p_id then
      'coalesce(m.provider_name, (select p.name from public.llm_providers p where p.id = m.provider_id))'
    when has_m_pname then 'm.provider_name'
    when has_m_pid and has_p_id then
      '(select p.name from public.llm_providers p where p.id = m.provider_id)'
    else 'null' end;

  ---------------------------------------------------------------------------------
  -- Blockers: collect every one, then refuse once.
  ---------------------------------------------------------------------------------
  if not m_keyed then
    for r in execute format(
      'select m.name, count(*) as n, string_agg(distinct coalesce(%s, ''(none)''), '', '') as provs
       from public.llm_models m group by m.name having count(*) > 1 order by m.name', model_provider)
    loop
      blockers := blockers || format('model name %L is used by %s models (providers: %s); rename or merge them so each name is unique',
                                     r.name, r.n, r.provs);
    end loop;
    select count(*) into n from public.llm_models where name is null;
    if n > 0 then
      blockers := blockers || format('%s llm_models rows have no name', n);
    end if;
  end if;

  for r in execute format(
    'select m.name, %s as prov from public.llm_models m order by m.name', model_provider)
  loop
    if r.prov is null then
      blockers := blockers || format('model %L has no provider that can be determined; set its provider_name', r.name);
    elsif not exists (select 1 from public.llm_providers p where p.name = r.prov) then
      blockers := blockers || format('model %L names provider %L, which is not in llm_providers', r.name, r.prov);
    end if;
  end loop;

  if u_mname_nullable then
    execute format(
      'select count(*) from public.llm_usage u where u.model_name is null %s',
      case when has_u_mid and has_m_id
        then 'and not exists (select 1 from public.llm_models m where m.id = u.model_id)' else '' end)
    into n;
    if n > 0 then
      blockers := blockers || format('%s llm_usage rows have no model_name and no model_id that finds a model', n);
    end if;
  end if;
  if u_pname_nullable then
    execute format(
      'select count(*) from public.llm_usage u where u.provider_name is null %s %s',
      case when has_u_pid and has_p_id
        then 'and not exists (select 1 from public.llm_providers p where p.id = u.provider_id)' else '' end,
      case when has_u_mid and has_m_id
        then format('and not exists (select 1 from public.llm_models m where m.id = u.model_id and %s is not null)', model_provider)
        else '' end)
    into n;
    if n > 0 then
      blockers := blockers || format('%s llm_usage rows have no provider_name and no UUID that finds a provider', n);
    end if;
  end if;

  -- Objects outside the three tables' own keys that depend on a UUID column.
  for line in
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
    )
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
      and not exists (select 1 from pg_depend e
                      where e.classid = 'pg_proc'::regclass and e.objid = f.oid and e.deptype = 'e')
      and (exists (select 1 from deps where deps.classid = 'pg_proc'::regclass and deps.objid = f.oid)
           or (f.prosrc ~* '\mllm_(usage|models|providers)\M'
               and f.prosrc ~* '\m(provider_id|model_id)\M|\mllm_(models|providers)\.id\M'))
    order by 1
  loop
    blockers := blockers || (line || ' depends on a UUID column; change or drop it first');
  end loop;

  if cardinality(blockers) > 0 then
    raise exception 'llm name keys: refusing to migrate, nothing was changed. % blocker(s): %',
      cardinality(blockers), array_to_string(blockers, '; ')
      using errcode = 'KB001',
            detail = array_to_string(blockers, E'\n'),
            hint = 'Fix each blocker, then push again. `kit status` lists them without changing anything.';
  end if;

  -- Indexes that lead with a UUID column go with it; suggest their name-based match, to be
  -- built CONCURRENTLY outside this transaction (a report, not a change).
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
    line := array_to_string(array(select k from unnest(r.keys) with ordinality u(k, o)
                                  where o = (select min(o2) from unnest(r.keys) with ordinality v(k2, o2) where k2 = k)
                                  order by o), ', ');
    raise notice 'llm name keys: suggestion: dropping % drops index %; build its name match outside the migration: create index concurrently on public.llm_usage (%)%',
      r.lead, r.idx, line,
      case when (select relkind from pg_class where oid = usage) = 'p'
        then ' (llm_usage is partitioned: create it on only the parent, then concurrently on each partition, and attach)'
        else '' end;
  end loop;

  -- `kit status` runs this file in a READ ONLY transaction to list the blockers and suggestions
  -- above; it stops here, before the back-fill's row locks and the ACCESS EXCLUSIVE lock below.
  if current_setting('transaction_read_only') = 'on' then
    return;
  end if;

  ---------------------------------------------------------------------------------
  -- Back-fill names from UUIDs under an UPDATE's weak lock (inserts keep flowing).
  ---------------------------------------------------------------------------------
  if u_mname_nullable and has_u_mid and has_m_id then
    update public.llm_usage u set model_name = m.name
    from public.llm_models m where u.model_name is null and u.model_id = m.id;
  end if;
  if u_pname_nullable and has_u_pid and has_p_id then
    update public.llm_usage u set provider_name = p.name
    from public.llm_providers p where u.provider_name is null and u.provider_id = p.id;
  end if;
  if u_pname_nullable and has_u_mid and has_m_id then
    execute format('update public.llm_usage u set provider_name = %s
                    from public.llm_models m where u.provider_name is null and u.model_id = m.id',
                   model_provider);
  end if;

  ---------------------------------------------------------------------------------
  -- Lock all three tables at once, giving way to other sessions between attempts.
  ---------------------------------------------------------------------------------
  deadline := clock_timestamp() + make_interval(secs => wait_s);
  loop
    begin
      perform set_config('lock_timeout', lock_ms || 'ms', true);
      lock table public.llm_usage, public.llm_models, public.llm_providers in access exclusive mode;
      exit;
    exception when lock_not_available then
      attempt := attempt + 1;
      if clock_timestamp() > deadline then
        select string_agg(distinct format('pid %s (%s, %s)', a.pid, coalesce(nullif(a.application_name, ''), 'no name'),
                                          a.state), ', ')
        into line
        from pg_locks l join pg_stat_activity a on a.pid = l.pid
        where l.relation in (providers, models, usage) and l.granted and a.pid <> pg_backend_pid();
        raise exception 'llm name keys: could not lock the LLM tables in % s (% attempts); held by %',
          wait_s, attempt, coalesce(line, 'sessions that have since finished')
          using errcode = 'KB002',
                hint = 'Nothing was changed. Push again when those sessions end, or end them.';
      end if;
      perform pg_sleep(least(0.05 * attempt, 1.0));
    end;
  end loop;
  raise notice 'llm name keys: locked the LLM tables after % retries', attempt;

  ---------------------------------------------------------------------------------
  -- llm_usage: names become the only link.
  ---------------------------------------------------------------------------------
  -- Rows written between the back-fill and the lock; only reached when names may be null.
  if u_mname_nullable and has_u_mid and has_m_id then
    update public.llm_usage u set model_name = m.name
    from public.llm_models m where u.model_name is null and u.model_id = m.id;
  end if;
  if u_pname_nullable and has_u_pid and has_p_id then
    update public.llm_usage u set provider_name = p.name
    from public.llm_providers p where u.provider_name is null and u.provider_id = p.id;
  end if;
  if u_pname_nullable and has_u_mid and has_m_id then
    execute format('update public.llm_usage u set provider_name = %s
                    from public.llm_models m where u.provider_name is null and u.model_id = m.id',
                   model_provider);
  end if;

  -- Only the foreign keys between the three tables that use a UUID column; any other (to
  -- auth.users, on the names) stays. Dropping the parent's drops the partitions' copies.
  for r in
    select k.conname from pg_constraint k
    where k.contype = 'f' and k.conrelid = usage and k.conparentid = 0
      and (exists (select 1 from pg_attribute a where a.attrelid = usage and a.attnum = any (k.conkey)
                   and a.attname in ('provider_id', 'model_id'))
           or (k.confrelid in (providers, models)
               and exists (select 1 from pg_attribute a where a.attrelid = k.confrelid
                           and a.attnum = any (k.confkey) and a.attname = 'id')))
  loop
    execute format('alter table public.llm_usage drop constraint %I', r.conname);
  end loop;
  if has_u_pid then alter table public.llm_usage drop column provider_id; end if;
  if has_u_mid then alter table public.llm_usage drop column model_id; end if;
  -- SET NOT NULL fails (and rolls everything back) if a row slipped in without a name.
  if u_pname_nullable then alter table public.llm_usage alter column provider_name set not null; end if;
  if u_mname_nullable then alter table public.llm_usage alter column model_name set not null; end if;

  ---------------------------------------------------------------------------------
  -- llm_models: provider by name.
  ---------------------------------------------------------------------------------
  if not has_m_pname then
    alter table public.llm_models add column provider_name varchar(255);
  end if;
  if has_m_pid and has_p_id then
    update public.llm_models m set provider_name = p.name
    from public.llm_providers p where m.provider_name is null and m.provider_id = p.id;
  end if;
  for r in
    select conname from pg_constraint c
    where c.contype = 'f' and c.conrelid = models and c.confrelid = providers
      and exists (select 1 from pg_attribute a where a.attrelid = providers and a.attnum = any (c.confkey)
                  and a.attname = 'id')
  loop
    execute format('alter table public.llm_models drop constraint %I', r.conname);
  end loop;
  if has_m_pid then alter table public.llm_models drop column provider_id; end if;
  alter table public.llm_models alter column provider_name set not null;

  ---------------------------------------------------------------------------------
  -- llm_providers, then llm_models: keyed by name, reusing a unique index on name.
  ---------------------------------------------------------------------------------
  foreach rel in array array[providers, models] loop
    if (rel = providers and p_keyed) or (rel = models and m_keyed) then
      continue;
    end if;
    for r in select conname from pg_constraint where contype = 'p' and conrelid = rel loop
      execute format('alter table %s drop constraint %I', rel, r.conname);
    end loop;
    if exists (select 1 from pg_attribute where attrelid = rel and attname = 'id' and not attisdropped) then
      execute format('alter table %s drop column id', rel);
    end if;
    -- A plain b-tree unique index on (name) alone becomes the key as it is.
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
    else
      -- A unique constraint's index cannot become the key: the constraint is replaced by the key,
      -- and the foreign keys that rely on it are put back unchanged on the key's index.
      refs := '{}';
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
      foreach line in array refs loop
        execute line;
      end loop;
    end if;
    idx_name := null; con_name := null;
  end loop;

  if not m_fk_ok then
    for r in
      select conname from pg_constraint c
      where c.contype = 'f' and c.conrelid = models and c.confrelid = providers
        and c.conkey = array[(select attnum from pg_attribute where attrelid = models and attname = 'provider_name')]
    loop
      execute format('alter table public.llm_models drop constraint %I', r.conname);
    end loop;
    alter table public.llm_models add foreign key (provider_name)
      references public.llm_providers (name) on delete cascade on update cascade;
  end if;

  raise notice 'llm name keys: migrated';
end
$migrate$;

-- PostgREST caches the schema; without this it keeps offering the dropped columns.
notify pgrst, 'reload schema';
