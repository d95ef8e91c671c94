-- Baseline: the LLM tables as they stood before name keys (the plan's "current state").
--
-- Production already has these tables but its migration history does not know this
-- file, so `supabase db push --include-all` runs it there too. It must then take no
-- lock and change nothing: everything happens inside one DO block that first asks
-- the catalog whether the tables exist. A fresh preview branch has none of them and
-- gets all three, so the name-key migration that follows has something to migrate.
do $baseline$
declare
  present text[];
begin
  select coalesce(array_agg(t order by t), '{}') into present
  from unnest(array['llm_providers', 'llm_models', 'llm_usage']) as t
  where to_regclass(format('public.%I', t)) is not null;

  if cardinality(present) = 3 then
    raise notice 'llm baseline: the LLM tables exist already, nothing to do';
    return;
  end if;
  if cardinality(present) > 0 then
    raise exception 'llm baseline: only some LLM tables exist (%); create the others by hand or drop these, then push again',
      array_to_string(present, ', ')
      using errcode = 'object_not_in_prerequisite_state';
  end if;

  create table public.llm_providers (
    id uuid primary key default gen_random_uuid(),
    name varchar(255) unique not null,
    display_name text,
    base_url text,
    created_at timestamptz not null default now()
  );

  create table public.llm_models (
    id uuid primary key default gen_random_uuid(),
    provider_id uuid references public.llm_providers (id),
    name varchar(255) not null,
    context_window integer,
    input_cost_per_mtok numeric(12, 6),
    output_cost_per_mtok numeric(12, 6),
    created_at timestamptz not null default now(),
    unique (provider_id, name)
  );

  create table public.llm_usage (
    id bigint generated always as identity primary key,
    provider_id uuid references public.llm_providers (id),
    model_id uuid references public.llm_models (id),
    provider_name varchar(255) not null,
    model_name varchar(255) not null,
    agent_name text,
    user_id uuid,
    prompt_tokens integer not null default 0,
    completion_tokens integer not null default 0,
    total_tokens integer generated always as (prompt_tokens + completion_tokens) stored,
    cost_usd numeric(12, 6),
    metadata jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
  );
  create index llm_usage_created_at_idx on public.llm_usage (created_at);
  create index llm_usage_model_name_idx on public.llm_usage (model_name, created_at);
  create index llm_usage_user_id_idx on public.llm_usage (user_id);

  alter table public.llm_usage enable row level security;

  -- Supabase's API roles exist on every Supabase database; a bare PostgreSQL may lack them.
  if exists (select 1 from pg_roles where rolname = 'service_role') then
    create policy llm_usage_service_role_all on public.llm_usage
      for all to service_role using (true) with check (true);
    grant select, insert, update, delete on public.llm_usage to service_role;
    grant select, insert, update, delete on public.llm_models, public.llm_providers to service_role;
  end if;
  if exists (select 1 from pg_roles where rolname = 'authenticated')
     and to_regprocedure('auth.uid()') is not null then
    create policy llm_usage_read_own on public.llm_usage
      for select to authenticated using (user_id = auth.uid());
    grant select on public.llm_usage, public.llm_models, public.llm_providers to authenticated;
  end if;
end
$baseline$;
